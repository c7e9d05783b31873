"""The REST edge in front of the real cart service: every error a client sees is the envelope.

Real Envoy (edge/ config) + real `python -m cart_svc`, on free ports.
"""

from __future__ import annotations

import json
import re
import uuid

import grpc
import httpx
import pytest

from checkout.v1 import catalog_pb2, catalog_pb2_grpc
from edge import envelope
from tests.e2e.conftest import free_port, tls_edge_overrides

pytestmark = pytest.mark.timeout(120)

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


def assert_clean_headers(response: httpx.Response) -> None:
    assert not [name for name in response.headers if name.lower().startswith(("grpc-", "x-envoy-", "x-edge-"))], response.headers
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get(name) == value, (name, response.headers)
    assert "default-src 'none'" in response.headers.get("content-security-policy", "")
    assert "Traceback" not in response.text


# --------------------------------------------------------------------------------------------
# success and correlation ids


def test_ping_is_json_with_a_new_correlation_id(edge):
    with edge.client() as client:
        response = client.get("/api/v1/ping")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"service": "cart_svc"}
    assert UUID_RE.match(response.headers["x-correlation-id"]), response.headers
    assert_clean_headers(response)


def test_each_request_gets_its_own_correlation_id(edge):
    with edge.client() as client:
        ids = {client.get("/api/v1/ping").headers["x-correlation-id"] for _ in range(3)}
    assert len(ids) == 3


def test_sent_correlation_id_is_echoed_on_success_and_in_error_body(edge, expect_envelope):
    cid = f"client-{uuid.uuid4()}"
    with edge.client(headers={"X-Correlation-ID": cid}) as client:
        ok = client.get("/api/v1/ping")
        failed = client.get("/api/v1/ping", headers={"Authorization": "Bearer not-a-jwt"})
        not_found = client.get("/no/such/path")
    assert ok.headers["x-correlation-id"] == cid
    assert expect_envelope(failed, 401, 1101)["correlation_id"] == cid
    assert expect_envelope(not_found, 404, 4004)["correlation_id"] == cid


def test_sent_correlation_id_is_sanitized_and_bounded(edge, expect_envelope):
    with edge.client() as client:
        dirty = client.get("/nope", headers={"X-Correlation-ID": 'abc<script>"x"</script>:1.2_3-4'})
        long = client.get("/api/v1/ping", headers={"X-Correlation-ID": "a" * 500})
        empty = client.get("/api/v1/ping", headers={"X-Correlation-ID": "<>"})
    assert expect_envelope(dirty, 404)["correlation_id"] == "abcscriptxscript:1.2_3-4"
    assert long.headers["x-correlation-id"] == "a" * envelope.MAX_CORRELATION_ID
    assert UUID_RE.match(empty.headers["x-correlation-id"])  # nothing left: a new one


# --------------------------------------------------------------------------------------------
# Envoy's own errors


def test_malformed_json_is_400_validation(edge, expect_envelope):
    with edge.client() as client:
        response = client.post("/api-proxy/api/cart", content=b'{"items": [', headers={"content-type": "application/json"})
    error = expect_envelope(response, 400, 1000)
    assert error["retryable"] is False
    assert error["validation_messages"] and all(isinstance(m, str) and m for m in error["validation_messages"])
    assert_clean_headers(response)


def test_wrong_field_type_is_400_validation(edge, expect_envelope):
    with edge.client() as client:
        response = client.post("/api-proxy/api/cart", json={"items": [{"quantity": "two"}]})
    error = expect_envelope(response, 400, 1000)
    assert any("quantity" in message for message in error["validation_messages"]), error


def test_unknown_query_parameter_is_400(edge, expect_envelope):
    with edge.client() as client:
        response = client.get("/api/v1/ping", params={"debug": "1"})
    error = expect_envelope(response, 400, 1000)
    assert any("debug" in message for message in error["validation_messages"]), error


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/no/such/path"), ("GET", "/api/v1/nope"), ("DELETE", "/api/v1/ping"), ("POST", "/api/v1/ping"), ("POST", "/"),
     ("GET", "/assets/missing.js")],
)
def test_unknown_path_or_method_is_404(edge, expect_envelope, method, path):
    with edge.client() as client:
        response = client.request(method, path)
    error = expect_envelope(response, 404, 4004)
    assert error["retryable"] is False
    assert_clean_headers(response)


def test_body_over_the_limit_is_413(edge, expect_envelope):
    big = json.dumps({"device_id": "x" * (edge.settings.max_body_bytes + 10)}).encode()
    with edge.client() as client:
        response = client.post("/api-proxy/api/cart", content=big, headers={"content-type": "application/json"})
        chunked = client.post(
            "/api-proxy/api/cart", content=iter([big[:1000], big[1000:]]), headers={"content-type": "application/json"}
        )
    expect_envelope(response, 413, 4013)
    expect_envelope(chunked, 413, 4013)


def _raw_http(edge, request: bytes) -> httpx.Response:
    """Send bytes no HTTP client would; parse the answer with h11 (httpx's own parser)."""
    import socket

    import h11

    with socket.create_connection(("127.0.0.1", edge.settings.port), timeout=5) as sock:
        sock.sendall(request)
        conn = h11.Connection(h11.CLIENT)
        conn.send(h11.Request(method="GET", target="/", headers=[("host", "x")]))  # to move h11 on
        head, body = None, b""
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(sock.recv(65536))
            elif isinstance(event, h11.Response):
                head = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
                break
    headers = [(k.decode(), v.decode()) for k, v in head.headers]
    return httpx.Response(head.status_code, headers=headers, content=body)


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /api/v1/ping HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", 400),
        (b"BLAH\r\n\r\n", 400),
        (b"GET /api/v1/ping HTTP/1.1\r\nHost: x\r\nx-big: " + b"a" * 70000 + b"\r\n\r\n", 431),
    ],
    ids=["bad-header", "bad-request-line", "headers-too-large"],
)
def test_malformed_http_is_an_envelope_too(edge, expect_envelope, request_bytes, status):
    """Refused by Envoy's codec before any filter saw a request: still the envelope, with an id."""
    response = _raw_http(edge, request_bytes)
    expect_envelope(response, status)
    assert_clean_headers(response)


def test_http10_probe_gets_healthz(edge, expect_envelope):
    """docker-compose's healthcheck speaks HTTP/1.0 without a Host header."""
    response = _raw_http(edge, b"GET /healthz HTTP/1.0\r\n\r\n")
    expect_envelope(response, 503, 4001)  # only cart runs beside this edge


def test_query_parameter_cannot_override_a_path_field(edge, expect_envelope):
    token = str(uuid.uuid4())
    with edge.client() as client:
        response = client.get(f"/api/v1/cart/{token}", params={"token": str(uuid.uuid4())})
    error = expect_envelope(response, 400, 1000)
    assert any("token" in message for message in error["validation_messages"]), error


@pytest.mark.parametrize("name", ["x$y", "a^b", "pipe|name", "x~y", "tick`", "q'uote", "amp&", "star*", "bang!", "hash#", "pct%", "plus+"])
def test_a_header_name_grpc_metadata_cannot_carry_is_dropped_not_a_500(edge, name):
    """Found by the fuzzer: HTTP allows these header names, gRPC metadata does not, and the
    service's gRPC server failed such a call (500, 5000, retryable). The edge drops them."""
    with edge.client() as client:
        response = client.get("/api/v1/ping", headers={name: "1", "x-kept": "2"})
    assert response.status_code == 200, response.text
    assert response.json() == {"service": "cart_svc"}


def test_native_grpc_is_not_served_by_the_edge(edge):
    with grpc.insecure_channel(edge.url.removeprefix("http://")) as channel:
        with pytest.raises(grpc.RpcError) as raised:
            catalog_pb2_grpc.CatalogServiceStub(channel).Ping(catalog_pb2.PingRequest(), timeout=5)
    assert raised.value.code() == grpc.StatusCode.UNIMPLEMENTED


# --------------------------------------------------------------------------------------------
# errors raised by the service


def test_invalid_bearer_token_is_401_from_the_service(edge, expect_envelope):
    with edge.client() as client:
        response = client.get("/api/v1/ping", headers={"Authorization": "Bearer not-a-jwt"})
    error = expect_envelope(response, 401, 1101)
    assert error["suggested_action"]
    assert_clean_headers(response)


def test_unknown_cart_with_the_database_gone_is_503_4001_retryable(launcher, expect_envelope):
    """CONTRACT.md: no request gets a 5xx other than 503 (4001, retryable) when a dependency is down."""
    nowhere = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/checkout"  # nothing listens there
    cart = launcher.service("cart_svc", env={"DATABASE_URL": nowhere})
    edge = launcher.edge(ports={"cart": cart.port})
    with edge.client() as client:
        response = client.get(f"/api/v1/cart/{uuid.uuid4()}")
    error = expect_envelope(response, 503, 4001)
    assert error["retryable"] is True, error
    assert_clean_headers(response)


# --------------------------------------------------------------------------------------------
# CORS


def test_cors_preflight_from_a_localhost_origin(edge):
    with edge.client() as client:
        response = client.options(
            "/api-proxy/api/cart",
            headers={
                "Origin": "http://localhost:5173",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type, authorization",
            },
        )
        simple = client.get("/api/v1/ping", headers={"Origin": "http://127.0.0.1:3000"})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "http://localhost:5173"
    assert "POST" in response.headers["access-control-allow-methods"]
    assert "authorization" in response.headers["access-control-allow-headers"]
    assert simple.headers["access-control-allow-origin"] == "http://127.0.0.1:3000"
    assert "x-correlation-id" in simple.headers["access-control-expose-headers"]


def test_cors_refuses_other_origins(edge):
    with edge.client() as client:
        preflight = client.options(
            "/api-proxy/api/cart", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
        )
        simple = client.get("/api/v1/ping", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in preflight.headers
    assert "access-control-allow-origin" not in simple.headers


# --------------------------------------------------------------------------------------------
# limits and availability (their own edge / service instances)


def test_rate_limit_exceeded_is_429(launcher, cart_service, dev_certs, expect_envelope):
    edge = launcher.edge(ports={"cart": cart_service.port}, rate_limit_rps=2, **tls_edge_overrides(dev_certs))
    with edge.client() as client:
        responses = [client.get("/api/v1/ping") for _ in range(8)]
    assert responses[0].status_code == 200
    limited = [r for r in responses if r.status_code == 429]
    assert limited, [r.status_code for r in responses]
    error = expect_envelope(limited[0], 429, 429)
    assert error["retryable"] is True
    assert_clean_headers(limited[0])
    # the bucket is per client address: another client is not limited
    other = httpx.Client(base_url=edge.url, transport=httpx.HTTPTransport(local_address="127.0.0.2"), timeout=10)
    with other:
        assert other.get("/api/v1/ping").status_code == 200


def test_healthz_needs_every_service(edge, expect_envelope):
    """The module's edge requires all four clusters; only cart runs."""
    with edge.client() as client:
        response = client.get("/healthz")
    error = expect_envelope(response, 503, 4001)
    assert error["retryable"] is True


def test_upstream_down_is_503_and_healthz_follows(launcher, expect_envelope):
    cart = launcher.service("cart_svc")
    edge = launcher.edge(ports={"cart": cart.port}, healthz_clusters=("cart",))
    healthy = edge.wait_healthz(200)
    assert "x-correlation-id" in healthy.headers
    with edge.client() as client:
        assert client.get("/api/v1/ping").status_code == 200

        cart.kill()
        down = client.get("/api/v1/ping")
        error = expect_envelope(down, 503, 4001)
        assert error["retryable"] is True and error["suggested_action"]
        assert_clean_headers(down)

        unhealthy = edge.wait_healthz(503)
        expect_envelope(unhealthy, 503, 4001)

        launcher.service("cart_svc", port=cart.port)
        edge.wait_healthz(200)
        assert client.get("/api/v1/ping").status_code == 200


def test_edge_logged_no_lua_errors(edge):
    log = edge.log.read_text(errors="replace")
    assert "[lua]" not in log, log[-4000:]
