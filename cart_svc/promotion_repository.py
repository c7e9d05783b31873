"""Coupons and sales in PostgreSQL, read as domain values."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from cart_svc.domain.coupons import Coupon
from cart_svc.domain.sales import Sale
from common.tables import coupon_redemptions, coupons, sales


def coupon_from_row(row: Any) -> Coupon:
    return Coupon(
        code=row.code, kind=row.kind, value=row.value, currency=row.currency.strip(), min_subtotal=row.min_subtotal,
        starts_at=row.starts_at, ends_at=row.ends_at, max_redemptions=row.max_redemptions,
        max_redemptions_per_user=row.max_redemptions_per_user, redeemed_count=row.redeemed_count,
        internship_ids=frozenset(row.internship_ids), listed=row.listed,
    )


def sale_from_row(row: Any) -> Sale:
    return Sale(slug=row.sale_slug, kind=row.kind, value=row.value, internship_ids=frozenset(row.internship_ids),
                starts_at=row.starts_at, ends_at=row.ends_at)


async def get_coupon(conn: AsyncConnection, code: str) -> Coupon | None:
    row = (await conn.execute(select(coupons).where(coupons.c.code == code.upper()))).first()
    return None if row is None else coupon_from_row(row)


async def listed_coupons(conn: AsyncConnection, also: str | None = None) -> list[Coupon]:
    """The coupons offered to every cart, and `also` (the cart's own code) whether listed or not."""
    wanted = coupons.c.listed if also is None else (coupons.c.listed | (coupons.c.code == also.upper()))
    return [coupon_from_row(row) for row in (await conn.execute(select(coupons).where(wanted).order_by(coupons.c.code))).all()]


async def user_redemptions(conn: AsyncConnection, code: str, user_id: str | None) -> int:
    if not user_id:
        return 0
    return (await conn.execute(
        select(func.count()).select_from(coupon_redemptions)
        .where(coupon_redemptions.c.code == code.upper(), coupon_redemptions.c.user_id == user_id,
               coupon_redemptions.c.status == "held")
    )).scalar_one()


async def get_sale(conn: AsyncConnection, slug: str) -> Sale | None:
    row = (await conn.execute(select(sales).where(sales.c.sale_slug == slug))).first()
    return None if row is None else sale_from_row(row)
