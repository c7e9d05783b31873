"""HTTPS at the edge and mutual TLS behind it, through a real Envoy (edge/tls.py, CONTRACT.md
"Transport"): `curl --cacert <dev CA> https://localhost:<tls port>/healthz` is 200 with HSTS;
TLS 1.2+ only, h2 and http/1.1 by ALPN; with require_tls the plain port redirects everything but
/healthz and /readyz; the edge reaches a service that requires client certificates with its own
(spiffe://interns/edge), and the service answers it."""

from __future__ import annotations

import os
import pathlib
import socket
import ssl

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from devstack import certs
from edge.settings import UpstreamTls
from tests.e2e.conftest import EdgeProcess, Launcher, ServiceProcess, free_port


@pytest.fixture(scope="module")
def cert_dir(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    directory = tmp_path_factory.mktemp("tls") / "certs"
    certs.ensure_dev_certs(directory, "interns.localhost")
    return directory


def _https(cert_dir: pathlib.Path) -> dict[str, object]:
    return {"tls_port": free_port(), "tls_cert_file": str(cert_dir / "edge-https.pem"),
            "tls_key_file": str(cert_dir / "edge-https-key.pem")}


@pytest.fixture(scope="module")
def mtls_cart(module_launcher: Launcher, cert_dir: pathlib.Path) -> ServiceProcess:
    """cart_svc serving mutual TLS only (its readiness probe presents the developer's certificate)."""
    env = {"GRPC_PLAINTEXT": "0", **certs.process_env(cert_dir, "cart_svc")}
    service = module_launcher.service("cart_svc", env=env, wait=False)
    service.wait_serving(credentials=certs.process_env(cert_dir, "developer"))
    return service


@pytest.fixture(scope="module")
def tls_edge(module_launcher: Launcher, mtls_cart: ServiceProcess, cert_dir: pathlib.Path) -> EdgeProcess:
    upstream = UpstreamTls(str(cert_dir / "ca.pem"), str(cert_dir / "edge.pem"), str(cert_dir / "edge-key.pem"))
    return module_launcher.edge(ports={"cart": mtls_cart.port}, healthz_clusters=("cart",), upstream_tls=upstream,
                                **_https(cert_dir))


def _tls_url(edge: EdgeProcess, host: str = "localhost") -> str:
    return f"https://{host}:{edge.settings.tls_port}"


def test_https_healthz_is_200_with_hsts_and_plain_http_has_no_hsts(tls_edge: EdgeProcess, cert_dir: pathlib.Path) -> None:
    tls_edge.wait_healthz(200)
    with httpx.Client(verify=ssl.create_default_context(cafile=str(cert_dir / "ca.pem")), timeout=10) as client:
        response = client.get(f"{_tls_url(tls_edge)}/healthz")
    assert response.status_code == 200
    assert response.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"
    plain = httpx.get(f"{tls_edge.url}/healthz", timeout=10)
    assert plain.status_code == 200 and "strict-transport-security" not in plain.headers


def test_a_rest_call_over_https_reaches_the_service_over_mutual_tls(tls_edge: EdgeProcess, cert_dir: pathlib.Path) -> None:
    tls_edge.wait_healthz(200)  # Envoy's gRPC health checks passed the service's client-certificate check
    verify = ssl.create_default_context(cafile=str(cert_dir / "ca.pem"))
    with httpx.Client(verify=verify, timeout=10) as client:
        for host in ("localhost", "127.0.0.1"):
            response = client.get(f"{_tls_url(tls_edge, host)}/api/v1/ping")
            assert response.status_code == 200, response.text
            assert response.headers["strict-transport-security"].startswith("max-age=31536000")
        # the dedicated host's name is in the certificate too
        cart = client.get(f"{_tls_url(tls_edge)}/api/v1/ping", headers={"host": "cart.interns.localhost"})
        assert cart.status_code == 200, cart.text


def _handshake(port: int, cafile: pathlib.Path, *, alpn: list[str], version: ssl.TLSVersion | None = None,
               server_name: str = "localhost") -> ssl.SSLSocket:
    context = ssl.create_default_context(cafile=str(cafile))
    context.set_alpn_protocols(alpn)
    if version is not None:
        context.set_ciphers("DEFAULT:@SECLEVEL=0")  # so that this client may offer an old version at all
        context.minimum_version = context.maximum_version = version
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    return context.wrap_socket(raw, server_hostname=server_name)


def test_tls12_and_13_with_h2_or_http11_by_alpn_and_nothing_older(tls_edge: EdgeProcess, cert_dir: pathlib.Path) -> None:
    port, ca = tls_edge.settings.tls_port, cert_dir / "ca.pem"
    with _handshake(port, ca, alpn=["h2", "http/1.1"]) as tls13:
        assert tls13.version() == "TLSv1.3" and tls13.selected_alpn_protocol() == "h2"
    with _handshake(port, ca, alpn=["http/1.1"], version=ssl.TLSVersion.TLSv1_2) as tls12:
        assert tls12.version() == "TLSv1.2" and tls12.selected_alpn_protocol() == "http/1.1"
        cipher = tls12.cipher()
        assert cipher is not None and ("GCM" in cipher[0] or "CHACHA20" in cipher[0]) and cipher[0].startswith("ECDHE")
    with pytest.warns(DeprecationWarning), pytest.raises(ssl.SSLError) as refused:
        _handshake(port, ca, alpn=["http/1.1"], version=ssl.TLSVersion.TLSv1_1).close()
    assert "PROTOCOL_VERSION" in str(refused.value)  # the server's alert: it speaks nothing older than 1.2


def test_require_tls_redirects_the_plain_port_but_not_the_probes(launcher: Launcher, mtls_cart: ServiceProcess,
                                                                  cert_dir: pathlib.Path) -> None:
    upstream = UpstreamTls(str(cert_dir / "ca.pem"), str(cert_dir / "edge.pem"), str(cert_dir / "edge-key.pem"))
    https = _https(cert_dir)
    edge = launcher.edge(ports={"cart": mtls_cart.port}, healthz_clusters=("cart",), upstream_tls=upstream,
                         require_tls=True, **https)
    edge.wait_healthz(200)
    port = https["tls_port"]
    for method, path in (("GET", "/api/v1/internships?x=1"), ("POST", "/api/v1/cart/estimate"), ("GET", "/")):
        response = httpx.request(method, f"{edge.url}{path}", timeout=10)
        assert response.status_code == 308, (method, path, response.status_code)
        assert response.headers["location"] == f"https://127.0.0.1:{port}{path}"
        assert "strict-transport-security" not in response.headers
    named = httpx.get(f"{edge.url}/api/v1/ping", headers={"host": "cart.interns.localhost:8080"}, timeout=10)
    assert named.headers["location"] == f"https://cart.interns.localhost:{port}/api/v1/ping"
    assert httpx.get(f"{edge.url}/healthz", timeout=10).status_code == 200
    readyz = httpx.get(f"{edge.url}/readyz", timeout=10)  # no metrics ports here: 503, but answered, not moved
    assert readyz.status_code in (200, 503) and "location" not in readyz.headers
    with httpx.Client(verify=ssl.create_default_context(cafile=str(cert_dir / "ca.pem")), timeout=10) as client:
        assert client.get(f"https://localhost:{port}/api/v1/ping").status_code == 200


def test_the_functional_stack_runs_over_https_and_mutual_tls(stack) -> None:  # type: ignore[no-untyped-def]
    """What every test of tests/e2e/stack.py's `stack` gets (unless E2E_PLAINTEXT=1)."""
    if os.environ.get("E2E_PLAINTEXT") == "1":
        pytest.skip("E2E_PLAINTEXT=1: the stack runs in plaintext")
    with stack.client() as client:
        assert str(client.base_url).startswith("https://localhost:")
        response = client.get("/api/v1/internships")
    assert response.status_code == 200 and response.headers["strict-transport-security"].startswith("max-age=")
    with grpc.insecure_channel(stack.services["cart"].address) as plaintext:
        with pytest.raises(grpc.RpcError) as refused:
            health_pb2_grpc.HealthStub(plaintext).Check(health_pb2.HealthCheckRequest(), timeout=3)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
