"""payment_tokens in PostgreSQL: one row per (order, attempt), written only by payment_svc."""

from __future__ import annotations

import dataclasses
import datetime
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from common.tables import orders, payment_tokens


@dataclasses.dataclass(frozen=True)
class PaymentRecord:
    token: str
    order_token: str
    attempt: int
    gateway: str
    gateway_order_id: str | None
    gateway_payment_id: str | None
    checkout_url: str | None
    amount: Decimal
    currency: str
    status: str
    expires_at: datetime.datetime
    created_at: datetime.datetime
    updated_at: datetime.datetime

    @property
    def opened(self) -> bool:
        return self.gateway_order_id is not None


def _record(row: Any) -> PaymentRecord:
    values = dict(row._mapping)
    values["currency"] = values["currency"].strip()
    return PaymentRecord(**values)


async def insert_pending(conn: AsyncConnection, *, order_token: str, attempt: int, gateway: str, amount: Decimal,
                         currency: str, expires_at: datetime.datetime) -> bool:
    """The attempt's row, pending and not yet at any gateway; False if it was already there."""
    inserted = (await conn.execute(insert(payment_tokens).values(
        token=str(uuid.uuid4()), order_token=order_token, attempt=attempt, gateway=gateway, amount=amount,
        currency=currency, status="pending", expires_at=expires_at,
    ).on_conflict_do_nothing(index_elements=[payment_tokens.c.order_token, payment_tokens.c.attempt])
        .returning(payment_tokens.c.token))).first()
    return inserted is not None


# The hottest reads, built once (see common/audit.py): each call only binds its values.
_BY_ATTEMPT = select(payment_tokens).where(payment_tokens.c.order_token == bindparam("order_token"),
                                           payment_tokens.c.attempt == bindparam("attempt"))
_BY_ATTEMPT_LOCKED = _BY_ATTEMPT.with_for_update()
_BY_GATEWAY_ORDER = select(payment_tokens).where(payment_tokens.c.gateway == bindparam("gateway"),
                                                 payment_tokens.c.gateway_order_id == bindparam("gateway_order_id"))
_BY_GATEWAY_ORDER_LOCKED = _BY_GATEWAY_ORDER.with_for_update()


async def by_attempt(conn: AsyncConnection, order_token: str, attempt: int, *, for_update: bool = False) -> PaymentRecord | None:
    query = _BY_ATTEMPT_LOCKED if for_update else _BY_ATTEMPT
    row = (await conn.execute(query, {"order_token": order_token, "attempt": attempt})).first()
    return None if row is None else _record(row)


async def by_token(conn: AsyncConnection, token: str, *, for_update: bool = False) -> PaymentRecord | None:
    query = select(payment_tokens).where(payment_tokens.c.token == token)
    if for_update:
        query = query.with_for_update()
    row = (await conn.execute(query)).first()
    return None if row is None else _record(row)


async def by_gateway_order(conn: AsyncConnection, gateway: str, gateway_order_id: str, *,
                           for_update: bool = False) -> PaymentRecord | None:
    query = _BY_GATEWAY_ORDER_LOCKED if for_update else _BY_GATEWAY_ORDER
    row = (await conn.execute(query, {"gateway": gateway, "gateway_order_id": gateway_order_id})).first()
    return None if row is None else _record(row)


async def owner_of(conn: AsyncConnection, order_token: str) -> str | None:
    return (await conn.execute(select(orders.c.user_id).where(orders.c.order_token == order_token))).scalar()


async def latest_attempt(conn: AsyncConnection, order_token: str) -> int:
    return int((await conn.execute(select(func.coalesce(func.max(payment_tokens.c.attempt), 0))
                                   .where(payment_tokens.c.order_token == order_token))).scalar_one())


def _update(*columns: str) -> Any:
    """UPDATE payment_tokens SET <columns> WHERE token = :w_token RETURNING *, built once."""
    return (update(payment_tokens).where(payment_tokens.c.token == bindparam("w_token"))
            .values({name: bindparam(name) for name in columns}).returning(*payment_tokens.c))


_MARK_OPENED = _update("gateway", "gateway_order_id", "checkout_url", "updated_at", "expires_at")
_SET_STATUS = _update("status", "updated_at")
_SET_STATUS_AND_PAYMENT = _update("status", "updated_at", "gateway_payment_id")


async def mark_opened(conn: AsyncConnection, token: str, *, gateway: str, gateway_order_id: str, checkout_url: str,
                      now: datetime.datetime, expires_at: datetime.datetime) -> PaymentRecord:
    row = (await conn.execute(_MARK_OPENED, {
        "w_token": token, "gateway": gateway, "gateway_order_id": gateway_order_id, "checkout_url": checkout_url,
        "updated_at": now, "expires_at": expires_at})).one()
    return _record(row)


async def set_status(conn: AsyncConnection, token: str, status: str, now: datetime.datetime, *,
                     gateway_payment_id: str | None = None) -> PaymentRecord:
    values: dict[str, Any] = {"w_token": token, "status": status, "updated_at": now}
    if gateway_payment_id is None:
        row = (await conn.execute(_SET_STATUS, values)).one()
    else:
        row = (await conn.execute(_SET_STATUS_AND_PAYMENT, {**values, "gateway_payment_id": gateway_payment_id})).one()
    return _record(row)


async def lock_overdue_pending(conn: AsyncConnection, now: datetime.datetime, limit: int) -> list[PaymentRecord]:
    """Pending sessions past their expiry, locked; rows another transaction holds are skipped."""
    rows = (await conn.execute(
        select(payment_tokens)
        .where(payment_tokens.c.status == "pending", payment_tokens.c.expires_at <= now)
        .order_by(payment_tokens.c.expires_at).limit(limit)
        .with_for_update(skip_locked=True)
    )).all()
    return [_record(row) for row in rows]
