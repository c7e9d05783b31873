"""webhook_events, the webhook inbox: one row per (gateway, event id), written in the transaction
that applies the event, so a row is `processed` exactly when its effects are committed."""

from __future__ import annotations

import dataclasses
import datetime

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from common.tables import webhook_events

MAX_ERROR = 2000


@dataclasses.dataclass(frozen=True)
class StoredEvent:
    status: str  # received | processed | failed | ignored
    error: str | None


# Built once (see common/audit.py): each call only binds its values.
_INSERT_RECEIVED = (insert(webhook_events)
                    .values({name: bindparam(name) for name in ("gateway", "event_id", "event_type", "body", "status", "received_at")})
                    .on_conflict_do_nothing(index_elements=[webhook_events.c.gateway, webhook_events.c.event_id])
                    .returning(webhook_events.c.event_id))


def _finish(*columns: str):  # type: ignore[no-untyped-def]
    return (update(webhook_events)
            .where(webhook_events.c.gateway == bindparam("w_gateway"), webhook_events.c.event_id == bindparam("w_event_id"))
            .values({name: bindparam(name) for name in columns}))


_FINISH = _finish("status", "processed_at", "error")
_FINISH_WITH_BODY = _finish("status", "processed_at", "error", "body")


async def insert_received(conn: AsyncConnection, *, gateway: str, event_id: str, event_type: str, body: bytes,
                          now: datetime.datetime) -> bool:
    """Insert the event as `received`; False if a row for (gateway, event id) already exists.

    A concurrent transaction inserting the same event makes this wait for its outcome (the
    primary key), so two deliveries of one event are never processed at the same time."""
    inserted = (await conn.execute(_INSERT_RECEIVED, {
        "gateway": gateway, "event_id": event_id, "event_type": event_type, "body": body, "status": "received",
        "received_at": now})).first()
    return inserted is not None


async def lock_existing(conn: AsyncConnection, gateway: str, event_id: str) -> StoredEvent | None:
    row = (await conn.execute(
        select(webhook_events.c.status, webhook_events.c.error)
        .where(webhook_events.c.gateway == gateway, webhook_events.c.event_id == event_id)
        .with_for_update()
    )).first()
    return None if row is None else StoredEvent(row.status, row.error)


async def finish(conn: AsyncConnection, *, gateway: str, event_id: str, status: str, now: datetime.datetime,
                 error: str | None = None, body: bytes | None = None) -> None:
    values: dict[str, object] = {"w_gateway": gateway, "w_event_id": event_id, "status": status, "processed_at": now,
                                 "error": None if error is None else error[:MAX_ERROR]}
    if body is None:
        await conn.execute(_FINISH, values)
    else:
        await conn.execute(_FINISH_WITH_BODY, {**values, "body": body})
