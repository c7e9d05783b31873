"""Run the cart service: python -m cart_svc (with the Redis cache and the expired-cart sweeper)."""

from __future__ import annotations

import asyncio
import contextlib

from sqlalchemy.ext.asyncio import AsyncEngine

from cart_svc.app import build_registration
from cart_svc.cart_cache import build_cart_cache
from cart_svc.sweeper import start_background_sweeper
from common.config import Settings
from common.service_main import Assembly, run_service


def assemble(engine: AsyncEngine, settings: Settings) -> Assembly:
    cache = build_cart_cache(settings)
    sweeper = start_background_sweeper(engine, cache, settings)

    async def stop() -> None:
        sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper
        await cache.close()

    return Assembly(build_registration(engine, settings, cache), [stop])


if __name__ == "__main__":
    run_service("cart_svc", lambda s: s.cart_grpc_port, lambda s: s.cart_metrics_port, assemble)
