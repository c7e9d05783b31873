"""A whole checkout stack on free ports for the browser tests (and for poking at by hand):
a database of its own (migrated, sample catalog loaded), its own NATS stream namespace, the four
services, the gateway emulator (in this process, on its own thread) and the edge in front.

    with full_stack(workdir, server_urls) as stack:
        stack.edge.url, stack.emulator.url, stack.admin_token(), stack.log_tails()

Reuses tests/e2e/conftest.py's Launcher (services and Envoy on free ports, stopped at the end).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pathlib
import random
import subprocess
import sys
import uuid
from collections.abc import Iterator

import psycopg
from sqlalchemy.engine import make_url

from common.auth import mint_token
from common.config import load_settings
from devstack.servers import ServerURLs
from gateway_emulator import start_emulator
from gateway_emulator.runner import RunningEmulator
from tests.e2e.conftest import EdgeProcess, Launcher, ServiceProcess, free_port

ROOT = pathlib.Path(__file__).resolve().parents[2]
SERVICES = ("cart_svc", "payment_svc", "order_svc", "enrollment_svc")


@dataclasses.dataclass
class Stack:
    launcher: Launcher
    edge: EdgeProcess
    emulator: RunningEmulator
    services: dict[str, ServiceProcess]
    database_url: str

    @property
    def url(self) -> str:
        return self.edge.url

    def admin_token(self) -> str:
        return mint_token(load_settings(), str(uuid.uuid4()), ["admin"])

    def log_tails(self, limit: int = 3000) -> str:
        return self.launcher.log_tails(limit)


def _libpq(url) -> str:  # type: ignore[no-untyped-def]
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@contextlib.contextmanager
def own_database(server_database_url: str) -> Iterator[str]:
    """A new database on the server, migrated and seeded with the sample catalog; dropped after."""
    server = make_url(server_database_url)
    name = f"checkout_browser_{uuid.uuid4().hex[:12]}"
    admin = _libpq(server.set(database="postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = server.set(database=name).render_as_string(hide_password=False)
    try:
        env = {**os.environ, "DATABASE_URL": url}
        for argv in (["-m", "alembic", "-c", "migrations/alembic.ini", "upgrade", "head"], ["-m", "cart_svc.seed"]):
            subprocess.run([sys.executable, *argv], cwd=ROOT, env=env, check=True, capture_output=True, timeout=120)
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def service_env(urls: ServerURLs, database_url: str, ports: dict[str, int], emulator_url: str) -> dict[str, str]:
    tag = uuid.uuid4().hex[:10]
    return {
        "DATABASE_URL": database_url,
        "REDIS_URL": urls.redis_url,
        "NATS_URL": urls.nats_url,
        # a stream namespace of this stack's own, so no other test's events reach it
        "NATS_STREAM": f"B{tag}",
        "NATS_DLQ_STREAM": f"B{tag}_DLQ",
        "NATS_SUBJECT_PREFIX": f"b{tag}.",
        "ENROLLMENT_DURABLE": f"enrollment_{tag}",
        "OUTBOX_RELAY_LOCK_KEY": str(random.randint(1, 2**62)),
        "OUTBOX_RELAY_EMBEDDED": "1",
        "OUTBOX_RELAY_POLL_INTERVAL": "0.2",
        "OUTBOX_RELAY_METRICS_PORT": "0",
        "CART_GRPC_PORT": str(ports["cart"]),
        "ORDER_GRPC_PORT": str(ports["order"]),
        "PAYMENT_GRPC_PORT": str(ports["payment"]),
        "ENROLLMENT_GRPC_PORT": str(ports["enrollment"]),
        "PAYMENT_GRPC_ADDRESS": f"127.0.0.1:{ports['payment']}",
        "ORDER_GRPC_ADDRESS": f"127.0.0.1:{ports['order']}",
        "RAZORPAY_BASE_URL": emulator_url,
        "STRIPE_BASE_URL": emulator_url,
        "GATEWAY_EMULATOR_PORT": emulator_url.rsplit(":", 1)[1],
        "EMULATOR_PUBLIC_URL": emulator_url,
        "LOG_LEVEL": "INFO",
    }


@contextlib.contextmanager
def full_stack(workdir: pathlib.Path, urls: ServerURLs) -> Iterator[Stack]:
    with own_database(urls.database_url) as database_url, contextlib.ExitStack() as stack:
        emulator = start_emulator(port=0, webhook_razorpay_url=None, webhook_stripe_url=None,
                                  webhook_retry_delays=(0.2, 0.5, 1.0, 2.0))
        stack.callback(emulator.stop)
        launcher = Launcher(workdir)
        stack.callback(launcher.close)
        ports = {name: free_port() for name in ("cart", "order", "payment", "enrollment")}
        env = service_env(urls, database_url, ports, emulator.url)
        module_port = {"cart_svc": "cart", "order_svc": "order", "payment_svc": "payment", "enrollment_svc": "enrollment"}
        services = {
            module: launcher.service(module, port=ports[module_port[module]], env=env, wait=False) for module in SERVICES
        }
        for service in services.values():
            service.wait_serving()
        edge = launcher.edge(ports=ports)
        edge.wait_healthz(200, timeout=20)
        emulator.set_webhook_targets(
            razorpay=f"{edge.url}/api/v1/webhooks/razorpay", stripe=f"{edge.url}/api/v1/webhooks/stripe"
        )
        yield Stack(launcher, edge, emulator, services, database_url)


if __name__ == "__main__":  # python -m tests.browser.stack: a stack to try the page by hand
    import signal
    import tempfile
    import time

    from devstack.servers import ensure_servers

    def _interrupt(*_: object) -> None:
        raise KeyboardInterrupt  # SIGTERM stops the stack as Ctrl-C does (the finally blocks run)

    signal.signal(signal.SIGTERM, _interrupt)

    with tempfile.TemporaryDirectory(prefix="browser-stack-") as tmp:
        servers = ensure_servers(pathlib.Path(tmp) / "servers")
        try:
            with full_stack(pathlib.Path(tmp), servers) as running:
                print(f"page: {running.url}/  emulator: {running.emulator.url}  logs: {tmp}", flush=True)
                with contextlib.suppress(KeyboardInterrupt):
                    while True:
                        time.sleep(1)
        finally:
            servers.stop()
