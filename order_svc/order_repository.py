"""Orders in PostgreSQL, and the latest payment session of each (payment_tokens, read only here)."""

from __future__ import annotations

import dataclasses
import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from common.tables import orders, payment_tokens


@dataclasses.dataclass(frozen=True)
class OrderRecord:
    order_token: str
    cart_token: str
    user_id: str
    status: str
    currency: str
    items: list[dict[str, Any]]
    subtotal: Decimal
    discount_code: str | None
    discount_amount: Decimal
    taxes: list[dict[str, str]]
    tax_amount: Decimal
    total: Decimal
    exchange_rate: Decimal
    billing: dict[str, str]
    payment_method: str | None
    payment_token: str | None
    enrollment_id: str | None
    expires_at: datetime.datetime
    created_at: datetime.datetime
    updated_at: datetime.datetime
    return_url: str = ""
    cancel_url: str = ""


@dataclasses.dataclass(frozen=True)
class SessionRecord:
    token: str
    order_token: str
    attempt: int
    gateway: str
    gateway_order_id: str | None
    checkout_url: str | None
    amount: Decimal
    currency: str
    status: str
    expires_at: datetime.datetime


def _order(row: Any) -> OrderRecord:
    values = dict(row._mapping)
    values["currency"] = values["currency"].strip()
    return OrderRecord(**values)


_FIELDS = tuple(field.name for field in dataclasses.fields(OrderRecord))
_INSERT = insert(orders).values({name: bindparam(name) for name in _FIELDS})


async def insert_order(conn: AsyncConnection, record: OrderRecord) -> None:
    await conn.execute(_INSERT, {name: getattr(record, name) for name in _FIELDS})


# Built once (see common/audit.py): each call only binds its values.
_GET = select(orders).where(orders.c.order_token == bindparam("order_token"))
_GET_LOCKED = _GET.with_for_update()


async def get_order(conn: AsyncConnection, order_token: str, *, for_update: bool = False) -> OrderRecord | None:
    row = (await conn.execute(_GET_LOCKED if for_update else _GET, {"order_token": order_token})).first()
    return None if row is None else _order(row)


async def order_of_cart(conn: AsyncConnection, cart_token: str) -> OrderRecord | None:
    row = (await conn.execute(select(orders).where(orders.c.cart_token == cart_token))).first()
    return None if row is None else _order(row)


_SET_STATUS: dict[tuple[str, ...], Any] = {}  # one prebuilt UPDATE per set of extra columns


async def set_status(conn: AsyncConnection, order_token: str, status: str, now: datetime.datetime, **more: Any) -> None:
    columns = tuple(sorted(more))
    statement = _SET_STATUS.get(columns)
    if statement is None:
        statement = _SET_STATUS[columns] = (
            update(orders).where(orders.c.order_token == bindparam("w_order_token"))
            .values({name: bindparam(name) for name in ("status", "updated_at", *columns)}))
    await conn.execute(statement, {"w_order_token": order_token, "status": status, "updated_at": now, **more})


async def latest_session(conn: AsyncConnection, order_token: str) -> SessionRecord | None:
    row = (await conn.execute(
        select(payment_tokens.c.token, payment_tokens.c.order_token, payment_tokens.c.attempt, payment_tokens.c.gateway,
               payment_tokens.c.gateway_order_id, payment_tokens.c.checkout_url, payment_tokens.c.amount,
               payment_tokens.c.currency, payment_tokens.c.status, payment_tokens.c.expires_at)
        .where(payment_tokens.c.order_token == order_token)
        .order_by(payment_tokens.c.attempt.desc()).limit(1)
    )).first()
    if row is None:
        return None
    values = dict(row._mapping)
    values["currency"] = values["currency"].strip()
    return SessionRecord(**values)
