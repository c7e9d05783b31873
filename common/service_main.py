"""The one way every service process starts: settings → logs → metrics → engine → gRPC → serve."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncEngine

from common.config import Settings, load_settings, warn_if_insecure
from common.db import create_engine
from common.logs import configure_logging
from common.metrics import serve_metrics
from common.server import Register, serve_until_signalled, start_server

BuildRegistration = Callable[[AsyncEngine, Settings], Register]


async def _serve(service: str, port: Callable[[Settings], int], metrics_port: Callable[[Settings], int],
                 build: BuildRegistration, extra_cleanup: list[Callable[[], Awaitable[None]]] | None = None) -> None:
    settings = load_settings()
    configure_logging(service, settings.log_level)
    warn_if_insecure(settings)
    serve_metrics(metrics_port(settings))
    engine = create_engine(settings)
    running = await start_server(settings, f"{settings.grpc_host}:{port(settings)}", build(engine, settings))
    await serve_until_signalled(running, on_stop=[*(extra_cleanup or []), engine.dispose])


def run_service(service: str, port: Callable[[Settings], int], metrics_port: Callable[[Settings], int],
                build: BuildRegistration) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # uvloop is an optimisation, not a requirement
        pass
    asyncio.run(_serve(service, port, metrics_port, build))
