"""The connection pool gauges (common/metrics.py), read at scrape time from every engine a process
made with common.db.create_engine, summed per service; real PostgreSQL."""

from __future__ import annotations

import contextlib

import prometheus_client

from common.db import create_engine


def pool(service: str) -> tuple[float, ...]:
    read = prometheus_client.REGISTRY.get_sample_value
    return tuple(read(name, {"service": service}) or 0.0 for name in (
        "checkout_db_pool_checked_out", "checkout_db_pool_size", "checkout_db_pool_overflow", "checkout_db_pool_max"))


async def test_checked_out_connections_size_overflow_and_limit_are_summed_per_service(settings):
    before = pool("payment")
    engine = create_engine(settings, "payment", pool_size=2)  # 2 kept + 2 overflow
    try:
        async with contextlib.AsyncExitStack() as held:
            for _ in range(3):  # one past the pool's size: an overflow connection
                await held.enter_async_context(engine.connect())
            assert tuple(now - then for now, then in zip(pool("payment"), before, strict=True)) == (3, 2, 1, 4)
        assert pool("payment")[0] == before[0]  # all given back
    finally:
        await engine.dispose()
