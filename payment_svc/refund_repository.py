"""SQL for `payment.refunds` and the session reads refunds need. Every method takes the caller's
connection (`uow.conn`) and never commits.

The one rule that needs the database: a refund is only inserted in a transaction that holds the
row lock of its captured session (`lock_captured_session`, SELECT … FOR UPDATE), and the sum of
that session's refunds is read after the lock is taken, so concurrent requests for one order are
checked one after the other against every refund committed before them.
"""

from __future__ import annotations

import dataclasses
import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from common.money import ZERO
from payment_svc.repository import PaymentRecord, _record
from payment_svc.tables import payment_sessions, refunds


@dataclasses.dataclass(frozen=True)
class RefundRecord:
    refund_id: str
    order_token: str
    payment_token: str
    gateway: str
    gateway_payment_id: str
    gateway_refund_id: str | None
    amount: Decimal
    currency: str
    status: str
    reason: str
    origin: str
    requested_by: str
    idempotency_key: str | None
    request_hash: str | None
    response: dict[str, Any] | None
    failure_reason: str | None
    next_check_at: datetime.datetime | None
    created_at: datetime.datetime
    updated_at: datetime.datetime


@dataclasses.dataclass(frozen=True)
class RefundTotals:
    held: Decimal  # pending + processed: what is no longer left to refund
    processed: Decimal  # what the gateway has paid back


def _refund(row: Any) -> RefundRecord:
    values = dict(row._mapping)
    values["currency"] = values["currency"].strip()
    for key in ("refund_id", "order_token", "payment_token"):
        values[key] = str(values[key])
    return RefundRecord(**values)


_CAPTURED_OF_ORDER = (select(payment_sessions)
                      .where(payment_sessions.c.order_token == bindparam("order_token"),
                             payment_sessions.c.status == "captured")
                      .order_by(payment_sessions.c.attempt).limit(1))
_CAPTURED_OF_ORDER_LOCKED = _CAPTURED_OF_ORDER.with_for_update()
_BY_GATEWAY_PAYMENT = (select(payment_sessions)
                       .where(payment_sessions.c.gateway == bindparam("gateway"),
                              payment_sessions.c.gateway_payment_id == bindparam("gateway_payment_id"))
                       .order_by(payment_sessions.c.attempt).limit(1).with_for_update())
_TOTALS = select(
    func.coalesce(func.sum(refunds.c.amount).filter(refunds.c.status != "failed"), ZERO).label("held"),
    func.coalesce(func.sum(refunds.c.amount).filter(refunds.c.status == "processed"), ZERO).label("processed"),
).where(refunds.c.payment_token == bindparam("payment_token"))
_BY_ID = select(refunds).where(refunds.c.refund_id == bindparam("refund_id"))
_BY_ID_LOCKED = _BY_ID.with_for_update()
_BY_KEY = select(refunds).where(refunds.c.idempotency_key == bindparam("key"))
_BY_GATEWAY_REFUND_LOCKED = (select(refunds).where(refunds.c.gateway == bindparam("gateway"),
                                                   refunds.c.gateway_refund_id == bindparam("gateway_refund_id"))
                             .with_for_update())
_OF_ORDER = (select(refunds).where(refunds.c.order_token == bindparam("order_token"))
             .order_by(refunds.c.created_at, refunds.c.refund_id))
_INSERT_COLUMNS = ("refund_id", "order_token", "payment_token", "gateway", "gateway_payment_id", "gateway_refund_id",
                   "amount", "currency", "status", "reason", "origin", "requested_by", "idempotency_key",
                   "request_hash", "next_check_at", "created_at", "updated_at")
_INSERT = refunds.insert().values({name: bindparam(name) for name in _INSERT_COLUMNS}).returning(*refunds.c)


class RefundRepository:
    async def lock_captured_session(self, conn: AsyncConnection, order_token: str) -> PaymentRecord | None:
        """The order's captured session (its first, by attempt), row-locked until the transaction ends."""
        row = (await conn.execute(_CAPTURED_OF_ORDER_LOCKED, {"order_token": order_token})).first()
        return None if row is None else _record(row)

    async def lock_session_of_payment(self, conn: AsyncConnection, gateway: str,
                                      gateway_payment_id: str) -> PaymentRecord | None:
        row = (await conn.execute(_BY_GATEWAY_PAYMENT, {"gateway": gateway,
                                                        "gateway_payment_id": gateway_payment_id})).first()
        return None if row is None else _record(row)

    async def totals(self, conn: AsyncConnection, payment_token: str) -> RefundTotals:
        row = (await conn.execute(_TOTALS, {"payment_token": payment_token})).one()
        return RefundTotals(held=Decimal(row.held), processed=Decimal(row.processed))

    async def insert(self, conn: AsyncConnection, **values: Any) -> RefundRecord:
        return _refund((await conn.execute(_INSERT, {name: values.get(name) for name in _INSERT_COLUMNS})).one())

    async def by_id(self, conn: AsyncConnection, refund_id: str, *, for_update: bool = False) -> RefundRecord | None:
        row = (await conn.execute(_BY_ID_LOCKED if for_update else _BY_ID, {"refund_id": refund_id})).first()
        return None if row is None else _refund(row)

    async def by_key(self, conn: AsyncConnection, key: str) -> RefundRecord | None:
        row = (await conn.execute(_BY_KEY, {"key": key})).first()
        return None if row is None else _refund(row)

    async def lock_by_gateway_refund(self, conn: AsyncConnection, gateway: str,
                                     gateway_refund_id: str) -> RefundRecord | None:
        row = (await conn.execute(_BY_GATEWAY_REFUND_LOCKED, {"gateway": gateway,
                                                              "gateway_refund_id": gateway_refund_id})).first()
        return None if row is None else _refund(row)

    async def of_order(self, conn: AsyncConnection, order_token: str) -> list[RefundRecord]:
        return [_refund(row) for row in (await conn.execute(_OF_ORDER, {"order_token": order_token})).all()]

    async def update(self, conn: AsyncConnection, refund_id: str, **values: Any) -> RefundRecord:
        statement = update(refunds).where(refunds.c.refund_id == refund_id).values(**values).returning(*refunds.c)
        return _refund((await conn.execute(statement)).one())

    async def due_pending(self, conn: AsyncConnection, now: datetime.datetime, limit: int) -> list[RefundRecord]:
        """Pending refunds whose next check is due, oldest first (the refund reconciler)."""
        statement = (select(refunds).where(refunds.c.status == "pending", refunds.c.next_check_at <= now)
                     .order_by(refunds.c.next_check_at).limit(limit))
        return [_refund(row) for row in (await conn.execute(statement)).all()]
