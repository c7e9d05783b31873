"""order_svc's use cases wired to fakes: tests/support/fake_uow.py, an in-memory OrderRepository
(same methods, the connection ignored) and the in-memory cart and payment cores of
tests/support/fake_internal_services.py, with a clock the test moves."""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Sequence
from typing import Any

from order_svc.domain.idempotency import StoredKey
from order_svc.domain.order_status import MAY_BE_PAID
from order_svc.domain.return_urls import parse_origin
from order_svc.place_order import PlaceOrder
from order_svc.progress import OrderProgress
from order_svc.repository import FinishedKey, OrderRecord, PlacementRecord
from order_svc.service import OrderService
from order_svc.workers.sweepers import OrderExpiry, PlacementRecovery
from tests.support.fake_internal_services import FakeCartCheckout, FakePaymentSessions
from tests.support.fake_uow import FakeUnitOfWork

START = datetime.datetime(2026, 12, 3, 10, 0, tzinfo=datetime.UTC)
ORDER_TTL = datetime.timedelta(hours=2)
KEY_LEASE = datetime.timedelta(seconds=30)
PLACEMENT_TIMEOUT = datetime.timedelta(minutes=2)
CLAIM_LEASE = datetime.timedelta(seconds=30)


class Clock:
    def __init__(self, now: datetime.datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += datetime.timedelta(**delta)


@dataclasses.dataclass
class KeyRow:
    request_hash: str
    recovery_point: str
    locked_at: datetime.datetime | None
    created_at: datetime.datetime
    order_token: str | None = None
    response_code: int | None = None
    response_body: bytes | None = None

    def stored(self) -> StoredKey:
        return StoredKey(self.request_hash, self.recovery_point, self.response_code, self.response_body,
                         self.order_token)


class FakeOrderRepository:
    """order_svc.repository.OrderRepository in memory; writes are immediate (no rollback)."""

    def __init__(self, uow: FakeUnitOfWork) -> None:
        self._uow = uow
        self.orders: dict[str, OrderRecord] = {}
        self.placements: dict[str, PlacementRecord] = {}
        self.keys: dict[tuple[str, str], KeyRow] = {}

    # -- orders
    async def insert_order(self, conn: Any, record: OrderRecord) -> OrderRecord | None:
        if record.order_token in self.orders:
            return None
        assert record.cart_token not in {order.cart_token for order in self.orders.values()}, "one order per cart"
        record = dataclasses.replace(record, order_number=len(self.orders) + 1)
        self.orders[record.order_token] = record
        return record

    async def get_order(self, conn: Any, order_token: str, *, for_update: bool = False) -> OrderRecord | None:
        return self.orders.get(order_token)

    async def update_order(self, conn: Any, order_token: str, **values: Any) -> None:
        self.orders[order_token] = dataclasses.replace(self.orders[order_token], **values)

    async def update_order_if(self, conn: Any, order_token: str, expected: dict[str, Any],
                              payment_patch: dict[str, str] | None = None, finish_key: FinishedKey | None = None,
                              **values: Any) -> OrderRecord | None:
        order = self.orders.get(order_token)
        if order is None or any(getattr(order, name) != value for name, value in expected.items()):
            return None
        if payment_patch is not None:
            if order.payment is None or order.payment.get("payment_token") != payment_patch["payment_token"]:
                return None
            values["payment"] = {**order.payment, **payment_patch}
        self.orders[order_token] = dataclasses.replace(order, **values)
        if finish_key is not None:
            await self.advance_key(conn, finish_key.user_id, finish_key.key, "finished", finish_key.now,
                                   response=finish_key.response)
        return self.orders[order_token]

    async def lock_unpaid_expired(self, conn: Any, now: datetime.datetime, limit: int) -> list[OrderRecord]:
        due = [order for order in self.orders.values() if order.status in MAY_BE_PAID and order.expires_at <= now]
        return sorted(due, key=lambda order: order.expires_at)[:limit]

    async def payment_flagged_before(self, conn: Any, order_token: str, payment_token: str) -> bool:
        return any(entry.action == "payment_flagged" and entry.entity_id == order_token
                   and entry.after["payment_token"] == payment_token for entry in self._uow.audited)

    # -- placements
    async def insert_placement(self, conn: Any, order_token: str, cart_token: str, user_id: str,
                               now: datetime.datetime, state: str = "converting") -> None:
        self.placements.setdefault(order_token, PlacementRecord(order_token, cart_token, user_id, state, None, now, now))

    async def get_placement(self, conn: Any, order_token: str) -> PlacementRecord | None:
        return self.placements.get(order_token)

    async def lock_placements(self, conn: Any, tokens: Sequence[str]) -> dict[str, PlacementRecord]:
        return {token: self.placements[token] for token in tokens if token in self.placements}

    async def set_placement(self, conn: Any, order_token: str, state: str, now: datetime.datetime, *,
                            resolved_order_token: str | None = None) -> None:
        placement = self.placements[order_token]
        self.placements[order_token] = dataclasses.replace(
            placement, state=state, updated_at=now,
            resolved_order_token=resolved_order_token or placement.resolved_order_token)

    async def place_and_insert_order(self, conn: Any, record: OrderRecord, *,
                                     key: tuple[str, str] | None = None) -> OrderRecord | None:
        placement = self.placements.get(record.order_token)
        if placement is None or placement.state != "converting":
            return None
        self.placements[record.order_token] = dataclasses.replace(
            placement, state="placed", resolved_order_token=record.order_token, updated_at=record.updated_at)
        inserted = await self.insert_order(conn, record)
        if inserted is not None and key is not None:
            await self.advance_key(conn, *key, "order_created", record.updated_at, order_token=record.order_token)
        return inserted

    async def abandon_stale(self, conn: Any, started_before: datetime.datetime, now: datetime.datetime,
                            limit: int) -> list[PlacementRecord]:
        stale = [p for p in self.placements.values() if p.state == "converting" and p.created_at < started_before]
        taken = sorted(stale, key=lambda p: p.created_at)[:limit]
        for placement in taken:
            self.placements[placement.order_token] = dataclasses.replace(placement, state="abandoned", updated_at=now)
        return [self.placements[p.order_token] for p in taken]

    async def claim_abandoned(self, conn: Any, claimed_before: datetime.datetime, now: datetime.datetime,
                              limit: int) -> list[PlacementRecord]:
        stale = [p for p in self.placements.values() if p.state == "abandoned" and p.updated_at < claimed_before]
        taken = sorted(stale, key=lambda p: p.updated_at)[:limit]
        for placement in taken:
            self.placements[placement.order_token] = dataclasses.replace(placement, updated_at=now)
        return [self.placements[p.order_token] for p in taken]

    async def mark_released(self, conn: Any, order_token: str, now: datetime.datetime) -> bool:
        placement = self.placements[order_token]
        if placement.state != "abandoned":
            return False
        self.placements[order_token] = dataclasses.replace(placement, state="released", updated_at=now)
        return True

    # -- idempotency keys
    async def claim_key(self, conn: Any, user_id: str, key: str, method: str, request_hash: str,
                        now: datetime.datetime, lease_expired_before: datetime.datetime, *,
                        order_token: str | None = None, cart_token: str | None = None) -> StoredKey | None:
        row = self.keys.get((user_id, key))
        if row is None:
            row = self.keys[(user_id, key)] = KeyRow(request_hash, "started" if order_token is None else "converting",
                                                     now, now, order_token)
            if order_token is not None and cart_token is not None:
                await self.insert_placement(conn, order_token, cart_token, user_id, now)
            return row.stored()
        free = row.locked_at is None or row.locked_at < lease_expired_before
        if row.response_code is None and row.request_hash == request_hash and free:
            row.locked_at = now
            return row.stored()
        return None

    async def get_key(self, conn: Any, user_id: str, key: str) -> StoredKey | None:
        row = self.keys.get((user_id, key))
        return None if row is None else row.stored()

    async def advance_key(self, conn: Any, user_id: str, key: str, recovery_point: str, now: datetime.datetime, *,
                          order_token: str | None = None, response: tuple[int, bytes] | None = None) -> None:
        row = self.keys[(user_id, key)]
        row.recovery_point, row.locked_at = recovery_point, now
        if order_token is not None:
            row.order_token = order_token
        if response is not None:
            row.response_code, row.response_body, row.locked_at = response[0], response[1], None

    async def release_key(self, conn: Any, user_id: str, key: str) -> None:
        self.keys[(user_id, key)].locked_at = None

    async def delete_finished_keys(self, conn: Any, created_before: datetime.datetime) -> int:
        old = [name for name, row in self.keys.items() if row.created_at < created_before and row.response_code is not None]
        for name in old:
            del self.keys[name]
        return len(old)


@dataclasses.dataclass
class World:
    uow: FakeUnitOfWork
    repository: FakeOrderRepository
    cart: FakeCartCheckout
    payments: FakePaymentSessions
    clock: Clock
    service: OrderService
    placing: PlaceOrder
    progress: OrderProgress
    recovery: PlacementRecovery
    expiry: OrderExpiry

    def subjects(self, order_token: str | None = None) -> list[str]:
        return [event.subject for event in self.uow.published
                if order_token is None or event.aggregate_id == order_token]

    def events(self, subject: str) -> list[Any]:
        return [event for event in self.uow.published if event.subject == subject]

    def audits(self, entity_id: str) -> list[Any]:
        return [entry for entry in self.uow.audited if entry.entity_id == entity_id]


RETURN_ORIGINS = (parse_origin("https://app.example"), parse_origin("http://localhost:*"))


def world() -> World:
    uow = FakeUnitOfWork()
    repository = FakeOrderRepository(uow)
    cart, payments, clock = FakeCartCheckout(), FakePaymentSessions(), Clock()
    factory = lambda: uow  # noqa: E731 (one fake unit of work, reused: it records what each commit wrote)
    service = OrderService(factory, repository, cart, payments, order_ttl=ORDER_TTL, key_lease=KEY_LEASE,  # type: ignore[arg-type]
                           clock=clock, return_origins=RETURN_ORIGINS)
    placing = PlaceOrder(factory, repository, cart, payments, order_ttl=ORDER_TTL, clock=clock)  # type: ignore[arg-type]
    progress = OrderProgress(factory, repository, clock)  # type: ignore[arg-type]
    recovery = PlacementRecovery(factory, repository, cart, timeout=PLACEMENT_TIMEOUT, claim_lease=CLAIM_LEASE,  # type: ignore[arg-type]
                                 batch=10, clock=clock)
    expiry = OrderExpiry(factory, repository, batch=2, clock=clock)  # type: ignore[arg-type]
    return World(uow, repository, cart, payments, clock, service, placing, progress, recovery, expiry)
