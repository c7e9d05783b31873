"""A whole checkout stack on free ports for the browser tests (and for poking at by hand):
a database of its own (each service's role and schema, migrated; sample catalog loaded), its own
NATS stream namespace (deleted at the end), the four services, the gateway emulator (in this
process, on its own thread) and the edge in front.

    with full_stack(workdir, server_urls) as stack:
        stack.edge.url, stack.emulator.url, stack.admin_token(), stack.log_tails()

Reuses tests/e2e/conftest.py's Launcher (services and Envoy on free ports, stopped at the end) and
tests/e2e/stack.py's settings for a stack's services.
"""

from __future__ import annotations

import contextlib
import dataclasses
import pathlib
import subprocess
import sys
import uuid
from collections.abc import Iterator

from common.auth import mint_token
from common.migrations import setup
from common.settings import Settings, load_settings
from devstack.servers import ServerURLs
from gateway_emulator import start_emulator
from gateway_emulator.runner import RunningEmulator
from tests.conftest import drop_database, new_database, settings_for
from tests.e2e.conftest import EdgeProcess, Launcher, ServiceProcess, free_port
from tests.e2e.stack import SERVICE_MODULES, drop_namespace, service_env, stack_settings
from tests.support.processes import inherited_env

ROOT = pathlib.Path(__file__).resolve().parents[2]


@dataclasses.dataclass
class Stack:
    settings: Settings  # what the services were started with
    launcher: Launcher
    edge: EdgeProcess
    emulator: RunningEmulator
    services: dict[str, ServiceProcess]

    @property
    def url(self) -> str:
        return self.edge.url

    @property
    def database_url(self) -> str:
        """The stack's database, as its administrator."""
        return self.settings.database_url

    def admin_token(self) -> str:
        return mint_token(self.settings, str(uuid.uuid4()), ["admin"])

    def log_tails(self, limit: int = 3000) -> str:
        return self.launcher.log_tails(limit)


@contextlib.contextmanager
def own_database(urls: ServerURLs) -> Iterator[Settings]:
    """Settings of a new database on the server: each service's role and schema, migrated, the sample
    catalog loaded (as `make run` loads it); dropped after."""
    url = new_database(urls.database_url, prefix="checkout_browser")
    try:
        setup(load_settings().replace(database_url=url))
        subprocess.run([sys.executable, "-m", "cart_svc.seed"], cwd=ROOT, env=inherited_env() | {"DATABASE_URL": url},
                       check=True, capture_output=True, timeout=120)
        yield settings_for(url, urls)
    finally:
        drop_database(url)


@contextlib.contextmanager
def full_stack(workdir: pathlib.Path, urls: ServerURLs) -> Iterator[Stack]:
    with own_database(urls) as database, contextlib.ExitStack() as stack:
        emulator = start_emulator(port=0, webhook_razorpay_url=None, webhook_stripe_url=None,
                                  webhook_retry_delays=(0.2, 0.5, 1.0, 2.0))
        stack.callback(emulator.stop)
        ports = {name: free_port() for name in SERVICE_MODULES}
        settings = stack_settings(database, ports).replace(
            razorpay_base_url=emulator.url, stripe_base_url=emulator.url, gateway_emulator_port=emulator.port,
            log_level="INFO")
        stack.callback(drop_namespace, settings)  # runs after launcher.close: the services are gone by then
        launcher = Launcher(workdir)
        stack.callback(launcher.close)
        env = {**service_env(settings), "EMULATOR_PUBLIC_URL": emulator.url}
        services = {
            module: launcher.service(module, port=ports[name], env=env, wait=False) for name, module in SERVICE_MODULES.items()
        }
        for service in services.values():
            service.wait_serving()
        # the page loads Razorpay Standard Checkout from this emulator (RAZORPAY_CHECKOUT_JS_URL)
        edge = launcher.edge(ports=ports, razorpay_checkout_js_url=settings.razorpay_checkout_js_url)
        edge.wait_healthz(200, timeout=20)
        emulator.set_webhook_targets(
            razorpay=f"{edge.url}/api/v1/webhooks/razorpay", stripe=f"{edge.url}/api/v1/webhooks/stripe"
        )
        yield Stack(settings, launcher, edge, emulator, services)


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
