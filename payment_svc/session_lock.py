"""One opener per (order, attempt) at a time: a session-level PostgreSQL advisory lock.

It is held on the caller's own connection, outside any transaction, for as long as the gateway
call takes (a transaction is never held open across that call). If the process dies, PostgreSQL
drops the connection and the lock with it. Waiting polls pg_try_advisory_lock until the
caller's deadline, so no call waits longer than its own bound.
"""

from __future__ import annotations

import asyncio
import hashlib
import struct

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from payment_svc.domain.deadline import Deadline

POLL_S = 0.05


def _lock_ids(order_token: str, attempt: int) -> tuple[int, int]:
    digest = hashlib.sha256(f"payment-session:{order_token}:{attempt}".encode()).digest()
    return struct.unpack(">ii", digest[:8])


async def acquire(conn: AsyncConnection, order_token: str, attempt: int, deadline: Deadline) -> bool:
    high, low = _lock_ids(order_token, attempt)
    while True:
        got = bool((await conn.execute(text("SELECT pg_try_advisory_lock(:h, :l)"), {"h": high, "l": low})).scalar())
        await conn.commit()
        if got:
            return True
        if deadline.remaining() <= POLL_S:
            return False
        await asyncio.sleep(POLL_S)


async def release(conn: AsyncConnection, order_token: str, attempt: int) -> None:
    high, low = _lock_ids(order_token, attempt)
    await conn.execute(text("SELECT pg_advisory_unlock(:h, :l)"), {"h": high, "l": low})
    await conn.commit()
