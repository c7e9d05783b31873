"""Marks open carts past their expires_at as expired: python -m cart_svc.sweeper [--once].

Any number of sweepers may run at once (one inside each cart service process, plus this command):
each batch locks its rows with FOR UPDATE SKIP LOCKED, so two sweepers never wait for each other
nor sweep the same cart, and a cart being changed right now is simply left for the next pass.
Reads never depend on the sweep (an open cart past expires_at already reads as expired); the
sweep makes the stored status true for queries, reports and other services.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import random
import signal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from cart_svc.cart_cache import CartCache, build_cart_cache
from common.config import Settings, load_settings
from common.db import create_engine
from common.logs import configure_logging

_log = logging.getLogger(__name__)

DEFAULT_INTERVAL_SECONDS = 60.0
DEFAULT_BATCH_SIZE = 500

# ANY(ARRAY(…)) rather than IN (…): the locking, LIMITed subquery then runs exactly once (an
# InitPlan); under IN the planner may re-run it and lock or update more rows than the LIMIT.
# The version bump makes cached estimates and discount listings of the old version unreachable.
_SWEEP = text("""
UPDATE carts SET status = 'expired', updated_at = now(), version = version + 1
WHERE token = ANY(ARRAY(
    SELECT token FROM carts
    WHERE status IN ('draft', 'active') AND expires_at <= now()
    ORDER BY expires_at
    LIMIT :n
    FOR UPDATE SKIP LOCKED))
RETURNING token, version
""")


async def sweep_batch(engine: AsyncEngine, cache: CartCache | None, batch_size: int = DEFAULT_BATCH_SIZE) -> list[str]:
    """One transaction: expire up to batch_size due carts; returns their tokens."""
    async with engine.begin() as conn:
        rows = [(str(token), int(version)) for token, version in (await conn.execute(_SWEEP, {"n": batch_size})).all()]
    if cache is not None and rows:
        await cache.carts_closed(rows)
    return [token for token, _ in rows]


async def sweep_due(engine: AsyncEngine, cache: CartCache | None, batch_size: int = DEFAULT_BATCH_SIZE) -> list[str]:
    """Batches until none is full: every cart due when this started (and not locked by others) is swept."""
    swept: list[str] = []
    while True:
        batch = await sweep_batch(engine, cache, batch_size)
        swept.extend(batch)
        if len(batch) < batch_size:
            return swept


async def run_sweeper(engine: AsyncEngine, cache: CartCache | None, *, interval_seconds: float = DEFAULT_INTERVAL_SECONDS,
                      batch_size: int = DEFAULT_BATCH_SIZE, stop: asyncio.Event | None = None) -> None:
    stop = stop or asyncio.Event()
    while not stop.is_set():
        try:
            swept = await sweep_due(engine, cache, batch_size)
            if swept:
                _log.info("expired carts swept", extra={"count": len(swept)})
        except Exception:  # a failed pass (database restarting, say) is retried on the next one
            _log.exception("cart sweep failed")
        # jitter keeps sweepers started together from hitting the database in lockstep; asyncio.timeout,
        # not wait_for, whose 3.11 version can lose a cancel that races its timeout (the task never ends)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(interval_seconds * random.uniform(0.8, 1.2)):
                await stop.wait()


def start_background_sweeper(engine: AsyncEngine, cache: CartCache | None, settings: Settings, *,
                             interval_seconds: float = DEFAULT_INTERVAL_SECONDS) -> asyncio.Task[None]:
    """The sweeper as a task of the running service (cancel it on shutdown)."""
    interval = min(interval_seconds, float(settings.cart_ttl_seconds))  # short dev TTLs still get timely sweeps
    return asyncio.get_running_loop().create_task(run_sweeper(engine, cache, interval_seconds=interval), name="cart-sweeper")


async def _main(args: argparse.Namespace) -> None:
    settings = load_settings()
    configure_logging("cart_sweeper", settings.log_level)
    engine = create_engine(settings, pool_size=2)
    cache = build_cart_cache(settings)
    try:
        if args.once:
            swept = await sweep_due(engine, cache, args.batch_size)
            _log.info("expired carts swept", extra={"count": len(swept)})
            return
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        await run_sweeper(engine, cache, interval_seconds=args.interval, batch_size=args.batch_size, stop=stop)
    finally:
        await cache.close()
        await engine.dispose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m cart_svc.sweeper", description="Mark open carts past expires_at as expired.")
    parser.add_argument("--once", action="store_true", help="sweep everything due now, then exit")
    parser.add_argument("--interval", type=float, default=DEFAULT_INTERVAL_SECONDS, help="seconds between passes (default 60)")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help="carts per transaction (default 500)")
    asyncio.run(_main(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
