"""Run the cart service: python -m cart_svc."""

from __future__ import annotations

import asyncio

from cart_svc.app import build_registration
from common.config import load_settings, warn_if_insecure
from common.db import create_engine
from common.logs import configure_logging
from common.metrics import serve_metrics
from common.server import serve_until_signalled, start_server


async def main() -> None:
    settings = load_settings()
    configure_logging("cart_svc", settings.log_level)
    warn_if_insecure(settings)
    serve_metrics(settings.cart_metrics_port)
    engine = create_engine(settings)
    running = await start_server(settings, f"{settings.grpc_host}:{settings.cart_grpc_port}", build_registration(engine, settings))
    await serve_until_signalled(running, on_stop=[engine.dispose])


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # uvloop is an optimisation, not a requirement
        pass
    asyncio.run(main())
