"""The orders payment_svc's sweeper looks for (orders belong to order_svc; this only reads and locks)."""

from __future__ import annotations

import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from common.tables import orders
from order_svc.domain.order_status import MAY_BE_PAID
from order_svc.order_repository import OrderRecord, get_order


async def lock_overdue_unpaid(conn: AsyncConnection, now: datetime.datetime, limit: int) -> list[OrderRecord]:
    """Orders past expires_at that may still be paid, locked; rows another transaction holds are skipped."""
    tokens = (await conn.execute(
        select(orders.c.order_token)
        .where(orders.c.status.in_(sorted(MAY_BE_PAID)), orders.c.expires_at <= now)
        .order_by(orders.c.expires_at).limit(limit)
        .with_for_update(skip_locked=True)
    )).scalars().all()
    found = [await get_order(conn, token) for token in tokens]
    return [order for order in found if order is not None]
