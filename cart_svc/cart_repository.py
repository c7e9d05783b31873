"""Carts in PostgreSQL: the aggregate read and written whole (lines as JSONB), row-locked for change."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from cart_svc.domain.cart import Cart, CartLine, PlanRef
from common.money import format_amount
from common.tables import carts


class CartTotals:
    """The cart's priced figures as stored beside it (recomputed on every write)."""

    def __init__(self, subtotal: Decimal, discount_amount: Decimal, tax_rate: Decimal, tax_amount: Decimal, total: Decimal):
        self.subtotal = subtotal
        self.discount_amount = discount_amount
        self.tax_rate = tax_rate
        self.tax_amount = tax_amount
        self.total = total


ZERO_TOTALS = CartTotals(Decimal(0), Decimal(0), Decimal(0), Decimal(0), Decimal(0))


# Built once (see common/audit.py): each call only binds its values.
_GET = select(carts).where(carts.c.token == bindparam("token"))
_GET_LOCKED = _GET.with_for_update()


async def get_cart(conn: AsyncConnection, token: str, *, for_update: bool = False) -> tuple[Cart, CartTotals] | None:
    row = (await conn.execute(_GET_LOCKED if for_update else _GET, {"token": token})).mappings().first()
    return None if row is None else _from_row(row)


async def open_cart_of_user(conn: AsyncConnection, user_id: str, *, exclude: str) -> Cart | None:
    """The user's most recently changed open cart other than `exclude`, locked."""
    query = (
        select(carts)
        .where(carts.c.user_id == user_id, carts.c.status.in_(("draft", "active")), carts.c.token != exclude)
        .order_by(carts.c.updated_at.desc())
        .limit(1)
        .with_for_update()
    )
    row = (await conn.execute(query)).mappings().first()
    return None if row is None else _from_row(row)[0]


_WRITTEN = ("user_id", "status", "items", "currency", "sale_slug", "discount_code", "subtotal", "discount_amount",
            "tax_rate", "tax_amount", "total", "expires_at", "device_id", "analytics_data", "version", "updated_at")
_INSERT = insert(carts).values({name: bindparam(name) for name in ("token", "created_at", *_WRITTEN)})
_SAVE = update(carts).where(carts.c.token == bindparam("w_token")).values({name: bindparam(name) for name in _WRITTEN})


async def insert_cart(conn: AsyncConnection, cart: Cart, totals: CartTotals) -> None:
    await conn.execute(_INSERT, {"token": cart.token, "created_at": cart.created_at, **_values(cart, totals)})


async def save_cart(conn: AsyncConnection, cart: Cart, totals: CartTotals) -> None:
    cart.version += 1
    await conn.execute(_SAVE, {"w_token": cart.token, **_values(cart, totals)})


def _values(cart: Cart, totals: CartTotals) -> dict[str, Any]:
    return {
        "user_id": cart.user_id,
        "status": cart.status,
        "items": [_line_json(line) for line in cart.lines],
        "currency": cart.currency,
        "sale_slug": cart.sale_slug,
        "discount_code": cart.coupon_code,
        "subtotal": totals.subtotal,
        "discount_amount": totals.discount_amount,
        "tax_rate": totals.tax_rate,
        "tax_amount": totals.tax_amount,
        "total": totals.total,
        "expires_at": cart.expires_at,
        "device_id": cart.device_id,
        "analytics_data": [{"name": name, "value": value} for name, value in cart.analytics_data],
        "version": cart.version,
        "updated_at": cart.updated_at,
    }


def _line_json(line: CartLine) -> dict[str, Any]:
    plan = line.plan
    return {
        "item_id": line.item_id,
        "plan_id": plan.plan_id,
        "internship_id": plan.internship_id,
        "title": plan.title,
        "period_value": plan.period_value,
        "period_unit": plan.period_unit,
        "list_price": format_amount(plan.list_price),
        "quantity": line.quantity,
    }


def _from_row(row: Any) -> tuple[Cart, CartTotals]:
    lines = [
        CartLine(
            item_id=item["item_id"],
            quantity=item["quantity"],
            plan=PlanRef(
                plan_id=item["plan_id"],
                internship_id=item["internship_id"],
                title=item["title"],
                period_value=item["period_value"],
                period_unit=item["period_unit"],
                list_price=Decimal(item["list_price"]),
            ),
        )
        for item in row["items"]
    ]
    cart = Cart(
        token=row["token"],
        user_id=row["user_id"],
        status=row["status"],
        lines=lines,
        currency=row["currency"].strip(),
        expires_at=row["expires_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        sale_slug=row["sale_slug"],
        coupon_code=row["discount_code"],
        device_id=row["device_id"],
        analytics_data=[(entry["name"], entry["value"]) for entry in row["analytics_data"]],
        version=row["version"],
    )
    totals = CartTotals(row["subtotal"], row["discount_amount"], row["tax_rate"], row["tax_amount"], row["total"])
    return cart, totals
