"""The one way every service process starts: settings → logs → metrics → engine → gRPC → serve."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncEngine

from common.config import Settings, load_settings, warn_if_insecure
from common.db import create_engine
from common.events import warn_about_fault_settings
from common.logs import configure_logging
from common.metrics import serve_metrics
from common.server import Register, serve_until_signalled, start_server

Cleanup = Callable[[], Awaitable[None]]


@dataclasses.dataclass
class Assembly:
    """A service's servicers plus what must stop with it (background workers, clients)."""

    register: Register
    on_stop: list[Cleanup] = dataclasses.field(default_factory=list)


# Called inside the running event loop, so it may start background tasks.
Assemble = Callable[[AsyncEngine, Settings], Assembly | Register]


async def _serve(service: str, port: Callable[[Settings], int], metrics_port: Callable[[Settings], int],
                 assemble: Assemble) -> None:
    settings = load_settings()
    configure_logging(service, settings.log_level)
    warn_if_insecure(settings)
    warn_about_fault_settings()
    serve_metrics(metrics_port(settings))
    engine = create_engine(settings)
    assembly = assemble(engine, settings)
    if not isinstance(assembly, Assembly):
        assembly = Assembly(assembly)
    running = await start_server(settings, f"{settings.grpc_host}:{port(settings)}", assembly.register)
    await serve_until_signalled(running, on_stop=[*assembly.on_stop, engine.dispose])


def run_service(service: str, port: Callable[[Settings], int], metrics_port: Callable[[Settings], int],
                assemble: Assemble) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # uvloop is an optimisation, not a requirement
        pass
    asyncio.run(_serve(service, port, metrics_port, assemble))
