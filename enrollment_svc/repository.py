"""Enrollments and dead letters in PostgreSQL, and the order row the consumer fulfils.

enrollment_svc owns `enrollments` and `dead_letters`. It also moves an order paid → fulfilled in
the shared database, under the order's row lock (docs/EVENTS.md says why it does not call
order_svc for that).
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from common.tables import dead_letters, enrollments, orders


@dataclasses.dataclass(frozen=True)
class EnrollmentRecord:
    enrollment_id: str
    order_token: str
    user_id: str
    internship_id: str
    plan_id: str
    status: str
    starts_at: datetime.datetime
    ends_at: datetime.datetime


@dataclasses.dataclass(frozen=True)
class OrderToFulfil:
    order_token: str
    user_id: str
    status: str
    items: list[dict[str, Any]]
    enrollment_id: str | None


@dataclasses.dataclass(frozen=True)
class DeadLetterRecord:
    dead_letter_id: str
    stream: str
    consumer: str
    stream_seq: int
    subject: str
    payload: bytes
    deliveries: int
    error: str
    status: str
    created_at: datetime.datetime
    replayed_at: datetime.datetime | None


_ENROLLMENT_COLUMNS = [getattr(enrollments.c, f.name) for f in dataclasses.fields(EnrollmentRecord)]


async def lock_order(conn: AsyncConnection, order_token: str) -> OrderToFulfil | None:
    row = (await conn.execute(
        select(orders.c.order_token, orders.c.user_id, orders.c.status, orders.c["items"], orders.c.enrollment_id)
        .where(orders.c.order_token == order_token).with_for_update()
    )).first()
    return None if row is None else OrderToFulfil(**row._mapping)


async def enrollment_of_order(conn: AsyncConnection, order_token: str) -> EnrollmentRecord | None:
    row = (await conn.execute(select(*_ENROLLMENT_COLUMNS).where(enrollments.c.order_token == order_token))).first()
    return None if row is None else EnrollmentRecord(**row._mapping)


async def insert_enrollment(conn: AsyncConnection, record: EnrollmentRecord) -> bool:
    """False when the order already has one: UNIQUE (order_token) is the last guard."""
    inserted = await conn.execute(
        pg_insert(enrollments).values(**dataclasses.asdict(record))
        .on_conflict_do_nothing(index_elements=[enrollments.c.order_token])
        .returning(enrollments.c.enrollment_id)
    )
    return inserted.first() is not None


async def set_order_fulfilled(conn: AsyncConnection, order_token: str, status: str, enrollment_id: str,
                              now: datetime.datetime) -> None:
    await conn.execute(update(orders).where(orders.c.order_token == order_token)
                       .values(status=status, enrollment_id=enrollment_id, updated_at=now))


async def enrollments_of_user(conn: AsyncConnection, user_id: str) -> list[EnrollmentRecord]:
    rows = await conn.execute(select(*_ENROLLMENT_COLUMNS).where(enrollments.c.user_id == user_id)
                              .order_by(enrollments.c.created_at, enrollments.c.enrollment_id))
    return [EnrollmentRecord(**row._mapping) for row in rows]


async def park(conn: AsyncConnection, *, dead_letter_id: str, stream: str, consumer: str, stream_seq: int,
               subject: str, payload: bytes, deliveries: int, error: str) -> bool:
    """Store a message the consumer gave up on; False if that stream message is already parked."""
    inserted = await conn.execute(
        pg_insert(dead_letters).values(
            dead_letter_id=dead_letter_id, stream=stream, consumer=consumer, stream_seq=stream_seq, subject=subject,
            payload=payload, deliveries=deliveries, error=error, status="parked",
        ).on_conflict_do_nothing(index_elements=[dead_letters.c.stream, dead_letters.c.stream_seq])
        .returning(dead_letters.c.dead_letter_id)
    )
    return inserted.first() is not None


async def get_dead_letter(conn: AsyncConnection, dead_letter_id: str, *, for_update: bool = False) -> DeadLetterRecord | None:
    query = select(dead_letters).where(dead_letters.c.dead_letter_id == dead_letter_id)
    if for_update:
        query = query.with_for_update()
    row = (await conn.execute(query)).first()
    return None if row is None else DeadLetterRecord(**row._mapping)


async def list_dead_letters(conn: AsyncConnection, *, status: str | None = None, limit: int = 1000) -> list[DeadLetterRecord]:
    query = select(dead_letters).order_by(dead_letters.c.created_at.desc(), dead_letters.c.stream_seq.desc()).limit(limit)
    if status is not None:
        query = query.where(dead_letters.c.status == status)
    return [DeadLetterRecord(**row._mapping) for row in await conn.execute(query)]


async def mark_replayed(conn: AsyncConnection, dead_letter_id: str, now: datetime.datetime) -> None:
    await conn.execute(update(dead_letters).where(dead_letters.c.dead_letter_id == dead_letter_id)
                       .values(status="replayed", replayed_at=now))


async def note_error(conn: AsyncConnection, dead_letter_id: str, error: str) -> None:
    await conn.execute(update(dead_letters).where(dead_letters.c.dead_letter_id == dead_letter_id).values(error=error))


