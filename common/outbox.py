"""The transactional outbox: an event is a row written in the same transaction as the change it
reports, and the relay (issue 5) publishes it to NATS JetStream with Nats-Msg-Id = its id."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import bindparam, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from common.request_context import correlation_id
from common.tables import outbox

STREAM_SUBJECT_PREFIX = "checkout."
# Built once (see common/audit.py): the hot path only binds values.
_INSERT = insert(outbox).values({name: bindparam(name) for name in ("id", "aggregate_id", "subject", "payload", "headers")})


async def add_event(conn: AsyncConnection, *, subject: str, aggregate_id: str, payload: dict[str, Any]) -> str:
    """`subject` like "checkout.order.created"; `aggregate_id` orders events of one aggregate."""
    if not subject.startswith(STREAM_SUBJECT_PREFIX):
        raise ValueError(f"outbox subject must start with {STREAM_SUBJECT_PREFIX!r}: {subject}")
    event_id = str(uuid.uuid4())
    await conn.execute(_INSERT, {"id": event_id, "aggregate_id": aggregate_id, "subject": subject, "payload": payload,
                                 "headers": {"correlation_id": correlation_id()}})
    return event_id
