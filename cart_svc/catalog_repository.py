"""The catalog in PostgreSQL: internships, plans, sales, exchange rates."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from cart_svc.domain.cart import PlanRef
from common.tables import exchange_rates, internships, plans


@dataclasses.dataclass(frozen=True)
class InternshipEntry:
    internship_id: str
    title: str
    description: str
    plans: tuple[PlanRef, ...]


_PLAN_COLUMNS = (plans.c.plan_id, plans.c.internship_id, internships.c.title, plans.c.period_value, plans.c.period_unit, plans.c.price)


def _plan(row) -> PlanRef:  # type: ignore[no-untyped-def]
    return PlanRef(plan_id=row.plan_id, internship_id=row.internship_id, title=row.title,
                   period_value=row.period_value, period_unit=row.period_unit, list_price=row.price)


async def list_internships(conn: AsyncConnection) -> list[InternshipEntry]:
    rows = (await conn.execute(
        select(*_PLAN_COLUMNS, internships.c.description)
        .join(internships, internships.c.internship_id == plans.c.internship_id)
        .order_by(internships.c.title, internships.c.internship_id, plans.c.period_unit, plans.c.period_value)
    )).all()
    grouped: dict[str, InternshipEntry] = {}
    for row in rows:
        entry = grouped.get(row.internship_id)
        plan = _plan(row)
        if entry is None:
            grouped[row.internship_id] = InternshipEntry(row.internship_id, row.title, row.description, (plan,))
        else:
            grouped[row.internship_id] = dataclasses.replace(entry, plans=(*entry.plans, plan))
    return list(grouped.values())


async def plans_by_id(conn: AsyncConnection, plan_ids: Iterable[str]) -> dict[str, PlanRef]:
    ids = sorted(set(plan_ids))
    if not ids:
        return {}
    rows = (await conn.execute(
        select(*_PLAN_COLUMNS).join(internships, internships.c.internship_id == plans.c.internship_id)
        .where(plans.c.plan_id.in_(ids))
    )).all()
    return {row.plan_id: _plan(row) for row in rows}


async def plan_for_period(conn: AsyncConnection, internship_id: str, value: int, unit: str) -> PlanRef | None:
    row = (await conn.execute(
        select(*_PLAN_COLUMNS).join(internships, internships.c.internship_id == plans.c.internship_id)
        .where(plans.c.internship_id == internship_id, plans.c.period_value == value, plans.c.period_unit == unit)
    )).first()
    return None if row is None else _plan(row)


async def exchange_rate(conn: AsyncConnection, currency: str) -> Decimal | None:
    if currency == "INR":
        return Decimal(1)
    return (await conn.execute(select(exchange_rates.c.rate).where(exchange_rates.c.currency == currency))).scalar()
