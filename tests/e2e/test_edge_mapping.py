"""Every catalog code through the edge, against a stub cart service run in-process.

The stub is a real grpc.aio server built by common.server.start_server (so the real interceptor
turns CheckoutError into google.rpc.Status + ErrorDetail), with servicers that raise on demand:
GET /api/v1/sales/<code> raises that catalog code. That pins the edge's code -> HTTP table
(including 402 and 410, which no gRPC status maps to) without waiting for the real RPCs.
"""

from __future__ import annotations

import asyncio
import threading
import uuid

import grpc
import pytest

from checkout.v1 import cart_pb2, cart_pb2_grpc, catalog_pb2, catalog_pb2_grpc
from common.errors import CheckoutError, ErrorCode
from common.request_context import correlation_id
from common.server import RunningServer, start_server
from common.settings import load_settings

pytestmark = pytest.mark.timeout(120)

CODES = {member.spec.code: member for member in ErrorCode}


class StubCatalog(catalog_pb2_grpc.CatalogServiceServicer):
    async def GetSale(self, request: catalog_pb2.GetSaleRequest, context: grpc.aio.ServicerContext) -> catalog_pb2.Sale:
        slug = request.sale_slug
        if slug.isdigit():
            raise CheckoutError(CODES[int(slug)])
        if slug == "validation":
            raise CheckoutError(ErrorCode.VALIDATION_FAILED, validation_messages=["items[0].quantity: must be >= 1", 'a "quoted" \\ one'])
        if slug == "crash":
            raise RuntimeError("secret internals: password=hunter2")
        if slug == "unavailable":
            await context.abort(grpc.StatusCode.UNAVAILABLE, "backend down")
        if slug == "invalid":
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, 'plain "gRPC" status')
        if slug == "slow":
            await asyncio.sleep(3)
        if slug == "whoami":
            return catalog_pb2.Sale(sale_slug=correlation_id())
        return catalog_pb2.Sale(sale_slug=slug)


class StubCart(cart_pb2_grpc.CartServiceServicer):
    async def GetCart(self, request: cart_pb2.GetCartRequest, context: grpc.aio.ServicerContext) -> cart_pb2.Cart:
        return cart_pb2.Cart(token=request.token)

    async def AddItem(self, request: cart_pb2.AddItemRequest, context: grpc.aio.ServicerContext) -> cart_pb2.Cart:
        return cart_pb2.Cart(token=request.token)


def _register(server: grpc.aio.Server) -> list[str]:
    catalog_pb2_grpc.add_CatalogServiceServicer_to_server(StubCatalog(), server)
    cart_pb2_grpc.add_CartServiceServicer_to_server(StubCart(), server)
    return ["checkout.v1.CatalogService", "checkout.v1.CartService"]


class StubServer:
    """A grpc.aio server on its own event loop in a background thread."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="stub-grpc", daemon=True)
        self._running: RunningServer | None = None

    @property
    def port(self) -> int:
        assert self._running is not None
        return self._running.port

    def start(self) -> None:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(start_server(load_settings(), "127.0.0.1:0", _register), self._loop)
        self._running = future.result(timeout=10)

    def stop(self) -> None:
        if self._running is not None:
            asyncio.run_coroutine_threadsafe(self._running.stop(0.2), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


@pytest.fixture(scope="module")
def stub():
    server = StubServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def stub_edge(module_launcher, stub):
    return module_launcher.edge(ports={"cart": stub.port}, route_timeout_ms=1000)


@pytest.mark.parametrize("code", sorted(CODES), ids=lambda code: CODES[code].name)
def test_every_catalog_code_keeps_its_http_status(stub_edge, expect_envelope, code):
    spec = CODES[code].spec
    with stub_edge.client() as client:
        response = client.get(f"/api/v1/sales/{code}")
    error = expect_envelope(response, spec.http_status, code)
    assert error["message"] == spec.message
    assert error["retryable"] is spec.retryable
    assert error["suggested_action"] == spec.suggested_action
    assert error["validation_messages"] == []


def test_validation_messages_pass_through_verbatim(stub_edge, expect_envelope):
    with stub_edge.client() as client:
        response = client.get("/api/v1/sales/validation")
    error = expect_envelope(response, 400, 1000)
    assert error["validation_messages"] == ["items[0].quantity: must be >= 1", 'a "quoted" \\ one']


def test_unexpected_exception_is_500_without_internals(stub_edge, expect_envelope):
    with stub_edge.client() as client:
        response = client.get("/api/v1/sales/crash")
    error = expect_envelope(response, 500, 5000)
    assert "hunter2" not in response.text and "RuntimeError" not in response.text
    assert error["retryable"] is True


def test_grpc_status_without_detail_gets_a_generic_envelope(stub_edge, expect_envelope):
    with stub_edge.client() as client:
        unavailable = client.get("/api/v1/sales/unavailable")
        invalid = client.get("/api/v1/sales/invalid")
    assert expect_envelope(unavailable, 503, 4001)["retryable"] is True
    assert "backend down" not in unavailable.text  # server-side text stays inside
    assert expect_envelope(invalid, 400, 1000)["validation_messages"] == ['plain "gRPC" status']


def test_upstream_timeout_is_504_retryable(stub_edge, expect_envelope):
    with stub_edge.client() as client:
        response = client.get("/api/v1/sales/slow")
    error = expect_envelope(response, 504, 4001)
    assert error["retryable"] is True


def test_the_service_sees_the_correlation_id_the_client_gets(stub_edge):
    with stub_edge.client() as client:
        generated = client.get("/api/v1/sales/whoami")
        sent = client.get("/api/v1/sales/whoami", headers={"X-Correlation-ID": "from-the-client-42"})
    assert generated.status_code == 200
    assert generated.json()["sale_slug"] == generated.headers["x-correlation-id"]
    assert sent.json()["sale_slug"] == sent.headers["x-correlation-id"] == "from-the-client-42"


def test_path_fields_cannot_be_overridden(stub_edge, expect_envelope):
    token, other = str(uuid.uuid4()), str(uuid.uuid4())
    with stub_edge.client() as client:
        plain = client.get(f"/api/v1/cart/{token}")
        assert plain.status_code == 200 and plain.json()["token"] == token
        for url in (
            f"/api/v1/cart/{token}?token={other}",
            f"/api/v1/cart/{token}?tok%65n={other}",  # encoded name
            f"/api/v1/c%61rt/{token}?token={other}",  # encoded path
            f"/api/v1/cart/{token}/?x&token={other}",
            f"/api/v1/cart/{token}/items?token={other}",
            f"/api/v1/cart/{token}?Token={other}",  # any spelling
            f"/api/v1/cart/{token}?TO_KEN={other}",
            f"/api/v1/cart/{token}/items?planId={other}",  # a field the body binds (body "*")
            f"/api/v1/cart/{token}/items?plan_id={other}",
            f"/api/v1/cart/{token}/items?quantity=9",
        ):
            method = "POST" if url.split("?")[0].endswith("/items") else "GET"
            response = client.request(method, url, json={"plan_id": "p"} if method == "POST" else None)
            assert other not in response.text, (url, response.text)
            error = expect_envelope(response, 400, 1000)
            assert "may not set" in " ".join(error["validation_messages"]), (url, error)
        in_body = client.post(f"/api/v1/cart/{token}/items", json={"token": other, "plan_id": "p"})
        assert other not in in_body.json().get("token", "")
        expect_envelope(in_body, 400, 1000)
