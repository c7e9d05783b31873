"""Idempotency keys in PostgreSQL (one row per user + key, kept at least 24 hours).

While a request runs, its key is held by a session-level advisory lock on the request's own
connection: a second request with the same key sees the lock taken (→ 2006, in flight), and
when a process dies mid-request PostgreSQL drops its connection and the lock with it, so the
client's retry resumes from the recovery point at once instead of waiting for a lock timeout.
"""

from __future__ import annotations

import hashlib
import struct

from sqlalchemy import text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from common.clock import utc_now
from common.tables import idempotency_keys
from order_svc.domain.idempotency import StoredKey


def _lock_ids(user_id: str, key: str) -> tuple[int, int]:
    digest = hashlib.sha256(f"idempotency:{user_id}:{key}".encode()).digest()
    return struct.unpack(">ii", digest[:8])


async def try_lock(conn: AsyncConnection, user_id: str, key: str) -> bool:
    high, low = _lock_ids(user_id, key)
    return bool((await conn.execute(text("SELECT pg_try_advisory_lock(:h, :l)"), {"h": high, "l": low})).scalar())


async def unlock(conn: AsyncConnection, user_id: str, key: str) -> None:
    high, low = _lock_ids(user_id, key)
    await conn.execute(text("SELECT pg_advisory_unlock(:h, :l)"), {"h": high, "l": low})


async def find_or_create(conn: AsyncConnection, user_id: str, key: str, method: str, request_hash: str) -> StoredKey:
    """The key's row, created on first use; one round trip either way."""
    now = utc_now()
    statement = insert(idempotency_keys).values(
        user_id=user_id, key=key, request_method=method, request_hash=request_hash, locked_at=now,
    )
    row = (await conn.execute(statement.on_conflict_do_update(
        index_elements=[idempotency_keys.c.user_id, idempotency_keys.c.key],
        set_={"last_used_at": now, "locked_at": now},
    ).returning(idempotency_keys))).first()
    assert row is not None
    return StoredKey(row.request_hash, row.recovery_point, row.response_code, row.response_body, row.order_token)


async def advance(conn: AsyncConnection, user_id: str, key: str, recovery_point: str, *, order_token: str | None = None,
                  response_code: int | None = None, response_body: bytes | None = None) -> None:
    values: dict[str, object] = {"recovery_point": recovery_point, "last_used_at": utc_now()}
    if order_token is not None:
        values["order_token"] = order_token
    if response_code is not None:
        values.update(response_code=response_code, response_body=response_body, locked_at=None)
    await conn.execute(update(idempotency_keys).where(idempotency_keys.c.user_id == user_id, idempotency_keys.c.key == key)
                       .values(**values))


async def delete_older_than(conn: AsyncConnection, hours: int) -> int:
    result = await conn.execute(text("DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(hours => :h) "
                                     "AND response_code IS NOT NULL"), {"h": hours})
    return result.rowcount or 0
