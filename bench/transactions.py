"""Transactions and rows per checkout: PostgreSQL's own counters (pg_stat_database) around N whole
checkouts, `--concurrency` at a time, less what the stack does when idle (relay polls, sweepers)
over as long. Every statement a relay sends alone is a transaction: at concurrency 1 the relays
publish one row per read; under load a read takes many.

Needs a running stack (`make run`); a benchmark, not a test.

    .venv/bin/python bench/transactions.py [--checkouts 100] [--concurrency 16] [--url http://127.0.0.1:8080]

Every statement this script sends itself (its polls for the enrollment) is counted and taken out.
A backend reports its counters when a transaction ends, at most once a second, or after ten idle
seconds: so the script waits IDLE_FLUSH_SECONDS before each reading.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid

import httpx
import psycopg
from sqlalchemy.engine import make_url

from checkout import run_checkouts
from common.auth import mint_token
from common.settings import load_settings

IDLE_FLUSH_SECONDS = 11.0
POLL_SECONDS = 0.05
FULFIL_TIMEOUT_SECONDS = 60.0
COUNTERS = ("xact_commit", "xact_rollback", "tup_inserted", "tup_updated", "tup_deleted")


class Counted:
    """One autocommit connection whose statements are counted (each is one transaction)."""

    def __init__(self, conn: psycopg.AsyncConnection) -> None:
        self.conn, self.statements = conn, 0

    async def one(self, sql: str, params: tuple[object, ...] = ()) -> tuple[object, ...]:
        self.statements += 1
        row = await (await self.conn.execute(sql, params)).fetchone()
        assert row is not None
        return tuple(row)

    async def counters(self) -> dict[str, float]:
        await self.one("SELECT pg_stat_clear_snapshot()")
        row = await self.one(f"SELECT {', '.join(COUNTERS)} FROM pg_stat_database WHERE datname = current_database()")
        return {name: float(str(value)) for name, value in zip(COUNTERS, row, strict=True)}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", default="http://127.0.0.1:8080")
    parser.add_argument("--checkouts", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    settings = load_settings()
    emulator_url = f"http://127.0.0.1:{settings.gateway_emulator_port}"
    database = make_url(settings.database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    async with httpx.AsyncClient(base_url=args.url, timeout=30) as client, \
            httpx.AsyncClient(base_url=emulator_url, timeout=30) as emulator, \
            await psycopg.AsyncConnection.connect(database, autocommit=True) as conn:
        db = Counted(conn)
        await asyncio.sleep(IDLE_FLUSH_SECONDS)
        idle_start, idle_at = await db.counters(), time.monotonic()
        await asyncio.sleep(IDLE_FLUSH_SECONDS)
        idle_end = await db.counters()
        idle_seconds = time.monotonic() - idle_at

        mine_before, started = db.statements, time.monotonic()
        opening = await db.counters()
        tokens = [mint_token(settings, str(uuid.uuid4())) for _ in range(args.checkouts)]
        orders = [p.order_token for p in await run_checkouts(client, emulator, tokens, args.concurrency)]
        for _ in range(int(FULFIL_TIMEOUT_SECONDS / POLL_SECONDS)):
            fulfilled = await db.one("SELECT count(*) FROM ordering.orders WHERE order_token = ANY(%s::uuid[])"
                                     " AND status = 'fulfilled'", (orders,))
            if fulfilled[0] == len(orders):
                break
            await asyncio.sleep(POLL_SECONDS)
        else:
            raise SystemExit(f"not every order was fulfilled within {FULFIL_TIMEOUT_SECONDS:.0f} s")
        await asyncio.sleep(IDLE_FLUSH_SECONDS)
        closing = await db.counters()
        mine = db.statements - mine_before - 2  # the opening reading's own two are in the opening figures
        seconds = time.monotonic() - started
    print(f"{args.checkouts} checkouts, {args.concurrency} at a time, over {seconds:.1f} s; idle rate over {idle_seconds:.1f} s subtracted")
    for name in COUNTERS:
        idle_rate = (idle_end[name] - idle_start[name] - (2 if name == "xact_commit" else 0)) / idle_seconds
        delta = closing[name] - opening[name] - idle_rate * seconds - (mine if name == "xact_commit" else 0)
        print(f"  {name:14} per checkout {delta / args.checkouts:6.1f}   (idle: {idle_rate:.1f}/s)")


if __name__ == "__main__":
    asyncio.run(main())
