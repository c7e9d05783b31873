"""Admin writes: coupons, sales, internships with plans, exchange rates (with their change log).

Inserts use ON CONFLICT DO NOTHING and report whether the row was new, so a duplicate is found
by the database itself, also when two admins create the same code at once.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from cart_svc.catalog_repository import InternshipEntry
from cart_svc.domain.coupons import Coupon
from cart_svc.domain.currency import ExchangeRate
from cart_svc.domain.sales import Sale
from common.tables import coupons, exchange_rate_changes, exchange_rates, internships, plans, sales


async def missing_internships(conn: AsyncConnection, ids: Iterable[str]) -> list[str]:
    wanted = sorted(set(ids))
    if not wanted:
        return []
    found = set((await conn.execute(select(internships.c.internship_id).where(internships.c.internship_id.in_(wanted)))).scalars())
    return [internship_id for internship_id in wanted if internship_id not in found]


async def insert_coupon(conn: AsyncConnection, coupon: Coupon) -> bool:
    row = (await conn.execute(insert(coupons).values(
        code=coupon.code, kind=coupon.kind, value=coupon.value, currency=coupon.currency,
        min_subtotal=coupon.min_subtotal, starts_at=coupon.starts_at, ends_at=coupon.ends_at,
        max_redemptions=coupon.max_redemptions, max_redemptions_per_user=coupon.max_redemptions_per_user,
        internship_ids=sorted(coupon.internship_ids), listed=coupon.listed,
    ).on_conflict_do_nothing(index_elements=[coupons.c.code]).returning(coupons.c.code))).first()
    return row is not None


async def insert_sale(conn: AsyncConnection, sale: Sale) -> bool:
    row = (await conn.execute(insert(sales).values(
        sale_slug=sale.slug, kind=sale.kind, value=sale.value, internship_ids=sorted(sale.internship_ids),
        starts_at=sale.starts_at, ends_at=sale.ends_at,
    ).on_conflict_do_nothing(index_elements=[sales.c.sale_slug]).returning(sales.c.sale_slug))).first()
    return row is not None


async def insert_internship(conn: AsyncConnection, entry: InternshipEntry) -> bool:
    """False when the internship id or any plan id is taken; the caller must then roll back."""
    row = (await conn.execute(insert(internships).values(
        internship_id=entry.internship_id, title=entry.title, description=entry.description,
    ).on_conflict_do_nothing().returning(internships.c.internship_id))).first()
    if row is None:
        return False
    added = (await conn.execute(insert(plans).values([
        {"plan_id": plan.plan_id, "internship_id": entry.internship_id, "period_value": plan.period_value,
         "period_unit": plan.period_unit, "price": plan.list_price, "currency": "INR"}
        for plan in entry.plans
    ]).on_conflict_do_nothing().returning(plans.c.plan_id))).all()
    return len(added) == len(entry.plans)


async def lock_rate(conn: AsyncConnection, currency: str) -> Decimal | None:
    """The current rate, its row locked so two changes of one currency log the right old rate."""
    return (await conn.execute(
        select(exchange_rates.c.rate).where(exchange_rates.c.currency == currency).with_for_update()
    )).scalar()


async def set_rate(conn: AsyncConnection, rate: ExchangeRate, old_rate: Decimal | None, changed_by: str) -> datetime.datetime:
    stamped = (await conn.execute(
        insert(exchange_rates).values(currency=rate.currency, rate=rate.rate, updated_at=func.now())
        .on_conflict_do_update(index_elements=[exchange_rates.c.currency],
                               set_={"rate": rate.rate, "updated_at": func.now()})
        .returning(exchange_rates.c.updated_at)
    )).scalar_one()
    await conn.execute(insert(exchange_rate_changes).values(
        currency=rate.currency, old_rate=old_rate, new_rate=rate.rate, changed_by=changed_by, changed_at=stamped,
    ))
    return stamped
