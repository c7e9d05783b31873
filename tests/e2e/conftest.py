"""End-to-end fixtures: real service processes and a real Envoy edge on free ports.

Reusable building blocks (every started process is stopped at the fixture's teardown):

    launcher          function-scoped Launcher: .service(module, ...), .edge(...), .stop(proc)
    module_launcher   the same, module-scoped (share slow start-ups between a module's tests)
    cart_service      module-scoped `python -m cart_svc` serving mutual TLS (a ServiceProcess: .port, .stop())
    edge              module-scoped Envoy in front of cart_service (an EdgeProcess: .url, .client()):
                      HTTPS (client()) and mutual TLS to the service; .url is the plain port
    dev_certs         session-scoped: a CA and every process's certificate (devstack/certs.py);
                      mtls_service(launcher, module, dev_certs), tls_edge_overrides(dev_certs)
    expect_envelope   assert that an httpx response is CONTRACT.md's error envelope
    stack             module-scoped functional stack (tests/e2e/stack.py): services with the
                      session's database, Redis and NATS behind an edge; see the end of this file

Services get CART_GRPC_PORT-style variables for their port, *_METRICS_PORT=0, and whatever
`env` adds. Without DATABASE_URL, REDIS_URL or NATS_URL in `env` a service reaches no server of
that kind (a port nobody listens on): the edge tests in front of a bare service need no data, and
a service of theirs must never join a `make run` stack on the default ports, whose events its
consumers would take. The edge is rendered by edge.config from EdgeSettings; pass overrides such as
rate_limit_rps=2 or healthz_clusters=("cart",), and upstream ports via `ports={"cart": 1234}`
(clusters without a port point at a free port nobody listens on).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pathlib
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from edge import config as edge_config
from edge import settings as edge_settings
from edge.__main__ import envoy_command
from gateway_emulator import RunningEmulator, start_emulator

ROOT = pathlib.Path(__file__).resolve().parents[2]
PYTHON = sys.executable
START_TIMEOUT = 20.0

# module -> (port variable, metrics port variable)
SERVICE_PORT_ENV = {
    "cart_svc": ("CART_GRPC_PORT", "CART_METRICS_PORT"),
    "order_svc": ("ORDER_GRPC_PORT", "ORDER_METRICS_PORT"),
    "payment_svc": ("PAYMENT_GRPC_PORT", "PAYMENT_METRICS_PORT"),
    "enrollment_svc": ("ENROLLMENT_GRPC_PORT", "ENROLLMENT_METRICS_PORT"),
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop_process(proc: subprocess.Popen, grace: float = 5.0) -> None:
    if proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait(timeout=grace)


def _tail(path: pathlib.Path, limit: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-limit:]
    except OSError:
        return ""


def _channel(address: str, credentials: dict[str, str] | None) -> grpc.Channel:
    if credentials is None:
        return grpc.insecure_channel(address)
    ca, cert, key = (pathlib.Path(credentials[name]).read_bytes() for name in ("TLS_CA_FILE", "TLS_CERT_FILE", "TLS_KEY_FILE"))
    return grpc.secure_channel(address, grpc.ssl_channel_credentials(ca, key, cert))


@dataclasses.dataclass
class ServiceProcess:
    module: str
    port: int
    proc: subprocess.Popen
    log: pathlib.Path

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, grace: float = 5.0) -> None:
        _stop_process(self.proc, grace)

    def kill(self) -> None:
        """Die at once, as a crash would (no graceful NOT_SERVING first)."""
        if self.alive():
            self.proc.kill()
            self.proc.wait(timeout=5)

    def wait_serving(self, timeout: float = START_TIMEOUT, credentials: dict[str, str] | None = None) -> None:
        """`credentials`: TLS_* files (devstack.certs.process_env) for a service serving mutual TLS."""
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.module} exited with {self.proc.returncode}:\n{_tail(self.log)}")
            try:
                with _channel(self.address, credentials) as channel:
                    reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=1)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError as error:
                last = error
            time.sleep(0.1)
        raise RuntimeError(f"{self.module} not serving on {self.address} after {timeout}s ({last}):\n{_tail(self.log)}")


@dataclasses.dataclass
class EdgeProcess:
    settings: edge_settings.EdgeSettings
    proc: subprocess.Popen
    config_path: pathlib.Path
    log: pathlib.Path
    https_ca: str = ""  # the CA of its HTTPS certificate: client() then speaks HTTPS, checking it

    @property
    def https_url(self) -> str:
        return f"https://localhost:{self.settings.tls_port}"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.settings.port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.admin_port}"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, grace: float = 5.0) -> None:
        _stop_process(self.proc, grace)

    def client(self, **kwargs: Any) -> httpx.Client:
        """On the HTTPS listener when the edge has one and its CA is known, else plain HTTP."""
        kwargs.setdefault("timeout", 10.0)
        if self.settings.https and self.https_ca:
            kwargs.setdefault("verify", ssl.create_default_context(cafile=self.https_ca))
            return httpx.Client(base_url=self.https_url, **kwargs)
        return httpx.Client(base_url=self.url, **kwargs)

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"envoy exited with {self.proc.returncode}:\n{_tail(self.log)}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.admin_url}/ready", timeout=1).status_code == 200:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"envoy not ready after {timeout}s:\n{_tail(self.log)}")

    def wait_healthz(self, expected: int, timeout: float = 10.0) -> httpx.Response:
        """Poll /healthz until it answers `expected` (health checks run every interval)."""
        deadline = time.monotonic() + timeout
        response = None
        while time.monotonic() < deadline:
            response = httpx.get(f"{self.url}/healthz", timeout=2)
            if response.status_code == expected:
                return response
            time.sleep(0.1)
        raise AssertionError(f"/healthz stayed {response.status_code if response else None}, wanted {expected}")


class Launcher:
    """Starts processes on free ports and stops every one of them in close()."""

    def __init__(self, workdir: pathlib.Path) -> None:
        self.workdir = workdir
        self._services: list[ServiceProcess] = []
        self._edges: list[EdgeProcess] = []
        # what every edge() gets unless told otherwise: the functional stack puts its TLS here
        # (tests/e2e/stack.py), so another edge in front of its services speaks to them as well
        self.edge_defaults: dict[str, Any] = {}

    def service(self, module: str, *, port: int | None = None, env: dict[str, str] | None = None, wait: bool = True) -> ServiceProcess:
        port_var, metrics_var = SERVICE_PORT_ENV[module]
        port = port or free_port()
        nowhere = free_port()  # closed again at once: nobody listens there
        isolated = {"DATABASE_URL": f"postgresql+psycopg://postgres@127.0.0.1:{nowhere}/checkout",
                    "REDIS_URL": f"redis://127.0.0.1:{nowhere}/0", "NATS_URL": f"nats://127.0.0.1:{nowhere}"}
        child_env = {**os.environ, **isolated, port_var: str(port), metrics_var: "0", "PYTHONUNBUFFERED": "1", **(env or {})}
        log = self.workdir / f"{module}-{port}.log"
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                [PYTHON, "-m", module], cwd=ROOT, env=child_env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        service = ServiceProcess(module, port, proc, log)
        self._services.append(service)
        if wait:
            service.wait_serving()
        return service

    def edge(self, *, ports: dict[str, int] | None = None, ops_ports: dict[str, int] | None = None, wait: bool = True,
             log_level: str = "warn", https_ca: str = "", webhook_ports: tuple[int, ...] = (), **overrides: Any) -> EdgeProcess:
        """`ops_ports`: the services' metrics ports, which /readyz asks (none given: /readyz is 503).
        `https_ca`: the CA of the HTTPS certificate given in the overrides (tls_cert_file…), for client().
        `webhook_ports`: payment_svc processes that answer the gateways' webhooks (SPLIT_WORKERS)."""
        ports, ops_ports = dict(ports or {}), dict(ops_ports or {})
        for name, value in self.edge_defaults.items():
            if name == "https_ca":
                https_ca = https_ca or value
            else:
                overrides.setdefault(name, value)
        if overrides.get("tls_cert_file"):
            overrides.setdefault("tls_port", free_port())
        defaults = edge_settings.EdgeSettings()
        upstreams = {
            name: edge_settings.Upstream("127.0.0.1", ports.get(name) or free_port(), ops_ports.get(name, 0),
                                         webhook_ports=webhook_ports if name == edge_settings.WEBHOOKS_UPSTREAM else ())
            for name in defaults.upstreams
        }
        overrides.setdefault("health_interval_ms", 250)
        # the edge's spans go nowhere unless a test receives them (`trace_collector=`): never to make run's
        overrides.setdefault("trace_collector", edge_settings.Collector("127.0.0.1", free_port()))
        settings = defaults.with_(port=free_port(), admin_port=free_port(), upstreams=upstreams, **overrides)
        config_path = self.workdir / f"envoy-{settings.port}.yaml"
        config_path.write_text(edge_config.render(settings))
        log = self.workdir / f"envoy-{settings.port}.log"
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                envoy_command(config_path, log_level), cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        edge = EdgeProcess(settings, proc, config_path, log, https_ca)
        self._edges.append(edge)
        if wait:
            edge.wait_ready()
        return edge

    def log_tails(self, limit: int = 3000) -> str:
        """The end of each started process's log, Envoy's first."""
        return "\n".join(f"--- {proc.log.name}\n{_tail(proc.log, limit)}" for proc in [*self._edges, *self._services])

    def close(self) -> None:
        for edge in reversed(self._edges):
            edge.stop()
        for service in reversed(self._services):
            service.stop()
        self._edges.clear()
        self._services.clear()


@contextlib.contextmanager
def _launcher() -> Iterator[Launcher]:
    with tempfile.TemporaryDirectory(prefix="e2e-") as workdir:
        launcher = Launcher(pathlib.Path(workdir))
        try:
            yield launcher
        finally:
            launcher.close()


@pytest.fixture
def launcher() -> Iterator[Launcher]:
    with _launcher() as started:
        yield started


@pytest.fixture(scope="module")
def module_launcher() -> Iterator[Launcher]:
    with _launcher() as started:
        yield started


@pytest.fixture(scope="module")
def emulator() -> Iterator[RunningEmulator]:
    """The gateway emulator for a module's stack, its webhooks sent nowhere until the test names
    the stack's edge (set_webhook_targets); a module that wants other settings defines its own."""
    running = start_emulator(port=0, webhook_razorpay_url=None, webhook_stripe_url=None)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="session")
def dev_certs(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """A CA and every process's certificate, as `make run` issues them (devstack/certs.py)."""
    from devstack import certs

    directory = tmp_path_factory.mktemp("dev-certs") / "certs"
    certs.ensure_dev_certs(directory, edge_settings.DEFAULT_DOMAIN)
    return directory


def tls_edge_overrides(cert_dir: pathlib.Path) -> dict[str, Any]:
    """Launcher.edge() keywords for HTTPS (client() speaks it) and mutual TLS to the services."""
    return {"upstream_tls": edge_settings.UpstreamTls(str(cert_dir / "ca.pem"), str(cert_dir / "edge.pem"),
                                                      str(cert_dir / "edge-key.pem")),
            "tls_cert_file": str(cert_dir / "edge-https.pem"), "tls_key_file": str(cert_dir / "edge-https-key.pem"),
            "https_ca": str(cert_dir / "ca.pem")}


def mtls_service(launcher: Launcher, module: str, cert_dir: pathlib.Path, **kwargs: Any) -> ServiceProcess:
    """`module` serving mutual TLS only, with its own certificate; ready once it answers health to
    the developer's certificate."""
    from devstack import certs

    env = {**kwargs.pop("env", {}), "GRPC_PLAINTEXT": "0", **certs.process_env(cert_dir, module)}
    service = launcher.service(module, env=env, wait=False, **kwargs)
    service.wait_serving(credentials=certs.process_env(cert_dir, "developer"))
    return service


@pytest.fixture(scope="module")
def cart_service(module_launcher: Launcher, dev_certs: pathlib.Path) -> ServiceProcess:
    """Serves mutual TLS (grpc clients: the developer's certificate, dev_certs)."""
    return mtls_service(module_launcher, "cart_svc", dev_certs)


@pytest.fixture(scope="module")
def edge(module_launcher: Launcher, cart_service: ServiceProcess, dev_certs: pathlib.Path) -> EdgeProcess:
    """HTTPS (client() uses it; url stays the plain port) and mutual TLS to cart_service."""
    return module_launcher.edge(ports={"cart": cart_service.port}, **tls_edge_overrides(dev_certs))


ENVELOPE_ERROR_FIELDS = ("code", "message", "validation_messages", "correlation_id", "retryable", "suggested_action")


def check_envelope(response: httpx.Response, status: int, code: int | None = None) -> dict:
    """CONTRACT.md's error envelope, with `status`; returns the "error" object."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers.get("content-type", "").startswith("application/json"), response.headers
    assert "Traceback" not in response.text
    assert not [name for name in response.headers if name.lower().startswith("grpc-")], response.headers
    body = response.json()
    assert set(body) == {"status", "success", "error"}, body
    assert body["status"] == status and body["success"] is False, body
    error = body["error"]
    assert set(error) == set(ENVELOPE_ERROR_FIELDS), error
    assert isinstance(error["code"], int) and isinstance(error["message"], str) and error["message"], error
    assert isinstance(error["validation_messages"], list), error
    assert isinstance(error["retryable"], bool) and isinstance(error["suggested_action"], str), error
    assert error["correlation_id"] and error["correlation_id"] == response.headers.get("x-correlation-id"), (error, response.headers)
    if code is not None:
        assert error["code"] == code, error
    return error


@pytest.fixture
def expect_envelope():
    return check_envelope


# --------------------------------------------------------------------------------------------
# The functional stack (tests/e2e/stack.py): services with this session's database behind an edge.
#
#     stack                     module-scoped Stack: .client(), .bearer(user_id, roles), .admin(),
#                               .services, .edge, await .execute(sql, **params) / .rows(sql, **params)
#                               as the database's administrator, .expire_cart(token)
#     stack_services            module-scoped: the services that must start (default ("cart",));
#                               override it in a test module to start more
#     stack_env                 module-scoped: extra environment for every service (default {})


@pytest.fixture(scope="module")
def stack_services() -> tuple[str, ...]:
    return ("cart",)


@pytest.fixture(scope="module")
def stack_env() -> dict[str, str]:
    return {}


@pytest.fixture(scope="module")
def stack(settings, cart_engine, admin_engine, stack_services, stack_env):  # type: ignore[no-untyped-def]
    """`cart_engine` first: it loads the sample catalog into the session's database."""
    from tests.e2e.stack import running_stack

    with _launcher() as started, running_stack(started, settings, admin_engine, services=stack_services,
                                               env=stack_env) as running:
        yield running
