"""In-memory stand-ins for payment_svc's service-layer tests: the repository (it ignores the
connection, as tests/support/fake_uow.py's unit of work hands it none) and a
gateway that opens orders and remembers every call."""

from __future__ import annotations

import dataclasses
import datetime
import uuid
from decimal import Decimal
from typing import Any

from payment_svc.domain.sessions import AttemptFacts, other_open_attempt
from payment_svc.gateways.base import CheckoutRequest, GatewayOrder
from payment_svc.repository import NewSession, PaymentRecord


class InMemoryPayments:
    """payment_svc.repository.PaymentRepository's session methods, over a dict."""

    def __init__(self, clock: Any) -> None:
        self.sessions: dict[str, PaymentRecord] = {}
        self._clock = clock

    def add(self, **values: Any) -> PaymentRecord:
        now = self._clock()
        defaults: dict[str, Any] = dict(
            token=str(uuid.uuid4()), order_token=str(uuid.uuid4()), attempt=1, user_id=str(uuid.uuid4()),
            gateway="razorpay", gateway_order_id=f"order_{uuid.uuid4().hex[:14]}", gateway_payment_id=None,
            checkout_url="http://example.invalid/checkout", payment_method=None, amount=Decimal("1770.00"),
            currency="INR", status="pending",
            expires_at=now + datetime.timedelta(minutes=30), order_expires_at=now + datetime.timedelta(hours=2),
            created_at=now, updated_at=now)
        record = PaymentRecord(**{**defaults, **values})
        self.sessions[record.token] = record
        return record

    async def lock_order(self, conn: Any, order_token: str) -> None:
        return None

    async def insert_pending(self, conn: Any, new: NewSession) -> PaymentRecord | None:
        if await self.by_attempt(conn, new.order_token, new.attempt) is not None:
            return None
        return self.add(order_token=new.order_token, attempt=new.attempt, user_id=new.user_id, gateway=new.gateway,
                        gateway_order_id=None, checkout_url=None, payment_method=new.payment_method or None,
                        amount=new.amount, currency=new.currency, expires_at=new.expires_at,
                        order_expires_at=new.order_expires_at, status=new.status, leased_until=new.leased_until)

    async def open_attempt(self, conn: Any, new: NewSession, now: datetime.datetime) -> PaymentRecord | None:
        facts = [AttemptFacts(s.attempt, s.status, s.expires_at) for s in await self.sessions_of(conn, new.order_token)]
        if other_open_attempt(new.attempt, facts, now) is not None:
            return None
        return await self.insert_pending(conn, new)

    async def by_attempt(self, conn: Any, order_token: str, attempt: int, *, for_update: bool = False) -> PaymentRecord | None:
        return next((s for s in self.sessions.values() if (s.order_token, s.attempt) == (order_token, attempt)), None)

    async def by_token(self, conn: Any, token: str, *, for_update: bool = False) -> PaymentRecord | None:
        return self.sessions.get(token)

    async def by_gateway_order(self, conn: Any, gateway: str, gateway_order_id: str, *,
                               for_update: bool = False) -> PaymentRecord | None:
        return next((s for s in self.sessions.values()
                     if (s.gateway, s.gateway_order_id) == (gateway, gateway_order_id)), None)

    async def sessions_of(self, conn: Any, order_token: str) -> list[PaymentRecord]:
        return sorted((s for s in self.sessions.values() if s.order_token == order_token), key=lambda s: s.attempt)

    async def claim_opening(self, conn: Any, token: str, now: datetime.datetime,
                            until: datetime.datetime) -> PaymentRecord | None:
        session = self.sessions[token]
        if session.opened or session.opening_elsewhere(now):
            return None
        return self._change(token, leased_until=until)

    async def release_opening(self, conn: Any, token: str, until: datetime.datetime) -> None:
        if self.sessions[token].leased_until == until:
            self._change(token, leased_until=None)

    async def mark_opened(self, conn: Any, token: str, *, if_status: str | None = None,
                          **values: Any) -> PaymentRecord | None:
        now = values.pop("now")
        session = self.sessions[token]
        if if_status is not None and (session.opened or session.status != if_status):
            return None
        return self._change(token, updated_at=now, leased_until=None, **values)

    async def set_status(self, conn: Any, token: str, status: str, now: datetime.datetime, *,
                         gateway_payment_id: str | None = None) -> PaymentRecord:
        more = {} if gateway_payment_id is None else {"gateway_payment_id": gateway_payment_id}
        return self._change(token, status=status, updated_at=now, **more)

    async def lock_overdue_pending(self, conn: Any, now: datetime.datetime, limit: int) -> list[PaymentRecord]:
        overdue = sorted((s for s in self.sessions.values() if s.status == "pending" and s.expires_at <= now),
                         key=lambda s: s.expires_at)
        return overdue[:limit]

    def _change(self, token: str, **values: Any) -> PaymentRecord:
        self.sessions[token] = dataclasses.replace(self.sessions[token], **values)
        return self.sessions[token]


class FakeGateway:
    name = "razorpay"

    def __init__(self) -> None:
        self.creates: list[tuple[str, int, str]] = []

    async def create_order(self, request: CheckoutRequest, *, deadline: Any = None,
                           may_exist: bool = True) -> GatewayOrder:
        self.creates.append((request.key, request.amount_minor, request.currency))
        return GatewayOrder("razorpay", f"order_{len(self.creates):014d}", f"http://gateway.invalid/{request.key}")
