"""Session-level PostgreSQL advisory locks named by text: held on the caller's own connection,
outside any transaction, and dropped by PostgreSQL with the connection if the process dies."""

from __future__ import annotations

import asyncio
import hashlib
import struct
import time

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

POLL_S = 0.05
_TRY = text("SELECT pg_try_advisory_lock(:h, :l)")
_UNLOCK = text("SELECT pg_advisory_unlock(:h, :l)")


def lock_ids(name: str) -> tuple[int, int]:
    """Two 32-bit keys from a name (the two-key form keeps clear of one-key locks)."""
    return struct.unpack(">ii", hashlib.sha256(name.encode()).digest()[:8])


async def try_lock(conn: AsyncConnection, name: str) -> bool:
    high, low = lock_ids(name)
    got = bool((await conn.execute(_TRY, {"h": high, "l": low})).scalar())
    await conn.commit()
    return got


async def lock_within(conn: AsyncConnection, name: str, seconds: float) -> bool:
    """Poll for the lock until `seconds` have passed; False if it stayed taken."""
    deadline = time.monotonic() + seconds
    while True:
        if await try_lock(conn, name):
            return True
        if deadline - time.monotonic() <= POLL_S:
            return False
        await asyncio.sleep(POLL_S)


async def unlock(conn: AsyncConnection, name: str) -> None:
    high, low = lock_ids(name)
    await conn.execute(_UNLOCK, {"h": high, "l": low})
    await conn.commit()
