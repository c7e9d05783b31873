"""The one way every service process starts: settings → logs → tracing → metrics → engine →
assemble → gRPC server and workers → serve until SIGTERM → stop workers, finish calls, close
clients, export the last spans.

SERVICE_ROLE splits one service over two processes that both serve gRPC: `api` runs only the
workers that keep its own caches (common/workers.py `serves_requests`), `workers` the relays,
consumers and sweepers (and answers the gateways' webhooks when the edge routes them there). Both are
safe side by side and replicated, as in `make run-ha`: every relay and sweeper takes a leader lock,
consumers share their durable."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncEngine

from common.db import create_engine
from common.faults import warn_about_fault_settings
from common.logs import configure_logging
from common.metrics import serve_metrics
from common.readiness import Readiness
from common.retention import PruneTask, retention_worker
from common.server import Register, serve_until_signalled, start_server
from common.settings import SCHEMAS, Settings, process_settings
from common.tracing import configure_tracing, shutdown_tracing
from common.workers import Worker, for_role

Cleanup = Callable[[], Awaitable[None]]
_log = logging.getLogger(__name__)


@dataclasses.dataclass
class Assembly:
    """One service process: its servicers, its background workers, what to close at the end."""

    register: Register
    workers: list[Worker] = dataclasses.field(default_factory=list)
    on_stop: list[Cleanup] = dataclasses.field(default_factory=list)
    retention: list[PruneTask] = dataclasses.field(default_factory=list)  # besides the plumbing's (common/retention.py)
    uses_redis: bool = False  # readiness then reports Redis too (common/readiness.py)


# Called inside the running event loop with the service's own engine.
Assemble = Callable[[AsyncEngine, Settings], Assembly]


def warn_if_insecure(settings: Settings) -> None:
    if settings.jwt_secret_is_dev_default:
        _log.warning("JWT_SECRET is the development default: anyone can mint tokens. "
                     "Set JWT_SECRET before this service faces real users.")


async def _serve(service: str, assemble: Assemble) -> None:
    settings = process_settings()
    configure_logging(f"{service}_svc", settings.log_level)
    configure_tracing(f"{service}_svc", settings)
    warn_if_insecure(settings)
    warn_about_fault_settings()
    engine = create_engine(settings, service)
    assembly = assemble(engine, settings)
    serve_metrics(settings.metrics_port(service), settings.grpc_host,
                  Readiness(service, engine, settings, uses_redis=assembly.uses_redis))
    role = settings.service_role
    running = await start_server(settings, f"{settings.grpc_host}:{settings.grpc_port(service)}", assembly.register)
    pruning = retention_worker(engine, SCHEMAS[service], settings, assembly.retention)
    workers = for_role(role, [*assembly.workers, *([pruning] if pruning else [])])
    if role != "all":
        _log.info("service role", extra={"role": role, "workers": [worker.name for worker in workers]})
    for worker in workers:
        worker.start()
    stops: list[Cleanup] = [worker.stop for worker in workers]
    await serve_until_signalled(running, on_stop=[*stops, *assembly.on_stop, engine.dispose])


def run_service(service: str, assemble: Assemble) -> None:
    """`service`: cart, order, payment or enrollment."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # uvloop is an optimisation, not a requirement
        pass
    try:
        asyncio.run(_serve(service, assemble))
    finally:
        shutdown_tracing()
