"""The edge's dedicated hosts through a real Envoy (CONTRACT.md "Hosts"): `cart.<EDGE_DOMAIN>` serves
only catalog and cart routes, `pay.<EDGE_DOMAIN>` only order, payment and webhook routes, any other
route there is 404 (4004) in the envelope without reaching a service; the main host serves them all.
Each host has its own CORS origins and its own rate-limit bucket.

Upstreams are stubs in this process (real grpc.aio servers built by common.server.start_server, one
per cluster) that record what reached them; clusters without a stub point at a port nobody listens
on (503, 4001). Names are sent in the Host header to 127.0.0.1: `*.localhost` resolves to loopback
in browsers, not necessarily in this machine's resolver."""

from __future__ import annotations

import asyncio
import collections
import threading
from collections.abc import Iterator

import grpc
import httpx
import pytest

from checkout.v1 import (
    cart_pb2,
    cart_pb2_grpc,
    catalog_pb2,
    catalog_pb2_grpc,
    order_pb2,
    order_pb2_grpc,
    payment_pb2,
    payment_pb2_grpc,
)
from common.server import RunningServer, start_server
from common.settings import load_settings

pytestmark = pytest.mark.timeout(120)

DOMAIN = "shop.localhost"
CART, PAY = f"cart.{DOMAIN}", f"pay.{DOMAIN}"
MAIN = "127.0.0.1"
TOKEN = "0b6f7a1e-0000-4000-8000-000000000001"

# (method, path, body, cluster whose stub answers) for one route of each kind
CATALOG = ("GET", "/api/v1/internships", None, "cart")
CART_ROUTE = ("GET", f"/api/v1/cart/{TOKEN}", None, "cart")
ORDER = ("POST", "/api/v1/order", {"cart_token": TOKEN}, "order")
ORDER_GET = ("GET", f"/api/v1/order/{TOKEN}", None, "order")
PAYMENT = ("GET", f"/api/v1/payment/{TOKEN}", None, "payment")
WEBHOOK = ("POST", "/api/v1/webhooks/razorpay", {"event": "payment.captured"}, "payment")
ADMIN = ("POST", "/api/v1/admin/coupons", {"code": "X"}, "cart")
ENROLLMENTS = ("GET", "/api/v1/enrollments", None, "enrollment")


class Calls:
    def __init__(self) -> None:
        self.seen: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()

    def add(self, cluster: str) -> None:
        with self._lock:
            self.seen[cluster] += 1

    def of(self, cluster: str) -> int:
        with self._lock:
            return self.seen[cluster]


class Catalog(catalog_pb2_grpc.CatalogServiceServicer):
    def __init__(self, calls: Calls) -> None:
        self.calls = calls

    async def ListInternships(self, request, context):
        self.calls.add("cart")
        return catalog_pb2.ListInternshipsResponse()

    async def Ping(self, request, context):
        self.calls.add("cart")
        return catalog_pb2.PingResponse()


class Cart(cart_pb2_grpc.CartServiceServicer):
    def __init__(self, calls: Calls) -> None:
        self.calls = calls

    async def GetCart(self, request, context):
        self.calls.add("cart")
        return cart_pb2.Cart(token=request.token)


class Order(order_pb2_grpc.OrderServiceServicer):
    def __init__(self, calls: Calls) -> None:
        self.calls = calls

    async def CreateOrder(self, request, context):
        self.calls.add("order")
        return order_pb2.Order(order_token=TOKEN, cart_token=request.cart_token)

    async def GetOrder(self, request, context):
        self.calls.add("order")
        return order_pb2.Order(order_token=request.order_token)


class Payment(payment_pb2_grpc.PaymentServiceServicer):
    def __init__(self, calls: Calls) -> None:
        self.calls = calls

    async def GetPayment(self, request, context):
        self.calls.add("payment")
        return payment_pb2.Payment(payment_token=request.payment_token)

    async def RazorpayWebhook(self, request, context):
        self.calls.add("payment")
        return payment_pb2.WebhookAck()


class Stubs:
    """One grpc.aio server per cluster (cart, order, payment) on a loop in a background thread."""

    def __init__(self) -> None:
        self.calls = Calls()
        self.ports: dict[str, int] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="host-stubs", daemon=True)
        self._running: list[RunningServer] = []

    def _register_cart(self, server: grpc.aio.Server) -> list[str]:
        catalog_pb2_grpc.add_CatalogServiceServicer_to_server(Catalog(self.calls), server)
        cart_pb2_grpc.add_CartServiceServicer_to_server(Cart(self.calls), server)
        return ["checkout.v1.CatalogService", "checkout.v1.CartService"]

    def _register_order(self, server: grpc.aio.Server) -> list[str]:
        order_pb2_grpc.add_OrderServiceServicer_to_server(Order(self.calls), server)
        return ["checkout.v1.OrderService"]

    def _register_payment(self, server: grpc.aio.Server) -> list[str]:
        payment_pb2_grpc.add_PaymentServiceServicer_to_server(Payment(self.calls), server)
        return ["checkout.v1.PaymentService"]

    def start(self) -> None:
        self._thread.start()
        registrations = {"cart": self._register_cart, "order": self._register_order,
                         "payment": self._register_payment}
        for cluster, register in registrations.items():
            future = asyncio.run_coroutine_threadsafe(start_server(load_settings({}), "127.0.0.1:0", register),
                                                      self._loop)
            running = future.result(timeout=10)
            self._running.append(running)
            self.ports[cluster] = running.port

    def stop(self) -> None:
        for running in self._running:
            asyncio.run_coroutine_threadsafe(running.stop(0.2), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


@pytest.fixture(scope="module")
def stubs() -> Iterator[Stubs]:
    started = Stubs()
    started.start()
    yield started
    started.stop()


@pytest.fixture(scope="module")
def hosts_edge(module_launcher, stubs):
    return module_launcher.edge(ports=dict(stubs.ports), domain=DOMAIN, rate_limit_rps=10_000,
                                cors_origins=("https://www.example",), cart_cors_origins=("https://shop.example",),
                                pay_cors_origins=("https://pay.example",))


def call(edge, host: str, route: tuple, **headers: str) -> httpx.Response:
    method, path, body, _ = route
    port = edge.settings.port
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        return client.request(method, path, json=body, headers={"host": f"{host}:{port}", **headers})


@pytest.mark.parametrize("route", [CATALOG, CART_ROUTE], ids=["catalog", "cart"])
def test_the_cart_host_serves_catalog_and_cart_routes(hosts_edge, stubs, route):
    before = stubs.calls.of("cart")
    response = call(hosts_edge, CART, route)
    assert response.status_code == 200, response.text
    assert stubs.calls.of("cart") == before + 1


@pytest.mark.parametrize("route", [ORDER, ORDER_GET, PAYMENT, WEBHOOK], ids=["order", "get-order", "payment", "webhook"])
def test_the_pay_host_serves_order_payment_and_webhook_routes(hosts_edge, stubs, route):
    cluster = route[3]
    before = stubs.calls.of(cluster)
    response = call(hosts_edge, PAY, route)
    assert response.status_code == 200, response.text
    assert stubs.calls.of(cluster) == before + 1


@pytest.mark.parametrize(("host", "route"), [
    (CART, ORDER), (CART, ORDER_GET), (CART, PAYMENT), (CART, WEBHOOK), (CART, ADMIN), (CART, ENROLLMENTS),
    (PAY, CATALOG), (PAY, CART_ROUTE), (PAY, ADMIN), (PAY, ENROLLMENTS),
    (CART, ("GET", "/", None, "")), (PAY, ("GET", "/assets/app.js", None, "")),  # the page is the main host's
    (PAY, ("GET", "/api/v1/nothing-here", None, "")),
], ids=lambda value: value if isinstance(value, str) else f"{value[0]} {value[1]}")
def test_any_other_route_on_a_dedicated_host_is_4004_and_reaches_no_service(hosts_edge, stubs, expect_envelope,
                                                                             host, route):
    before = dict(stubs.calls.seen)
    response = call(hosts_edge, host, route)
    error = expect_envelope(response, 404, 4004)
    assert error["retryable"] is False
    assert dict(stubs.calls.seen) == before


@pytest.mark.parametrize("route", [CATALOG, CART_ROUTE, ORDER, PAYMENT, WEBHOOK], ids=lambda r: f"{r[0]} {r[1]}")
def test_the_main_host_still_serves_every_route(hosts_edge, stubs, route):
    cluster = route[3]
    before = stubs.calls.of(cluster)
    for host in (MAIN, "localhost", "checkout.example"):  # any host that is not a dedicated one
        response = call(hosts_edge, host, route)
        assert response.status_code == 200, (host, response.text)
    assert stubs.calls.of(cluster) == before + 3


def test_a_route_to_a_cluster_nobody_serves_is_routed_on_the_main_host_only(hosts_edge, expect_envelope):
    expect_envelope(call(hosts_edge, MAIN, ENROLLMENTS), 503, 4001)  # routed: no enrollment service runs
    expect_envelope(call(hosts_edge, CART, ENROLLMENTS), 404, 4004)  # not routed at all


def test_host_names_match_without_regard_to_case_or_port(hosts_edge, expect_envelope):
    port = hosts_edge.settings.port
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        assert client.get("/api/v1/internships", headers={"host": CART.upper()}).status_code == 200
        expect_envelope(client.get(f"/api/v1/order/{TOKEN}", headers={"host": f"{CART}:{port}"}), 404, 4004)
        expect_envelope(client.get("/api/v1/internships", headers={"host": PAY}), 404, 4004)


def preflight(edge, host: str, origin: str) -> httpx.Response:
    return call(edge, host, ("OPTIONS", "/api/v1/internships", None, ""), origin=origin,
                **{"access-control-request-method": "GET", "access-control-request-headers": "authorization"})


@pytest.mark.parametrize(("host", "allowed", "refused"), [
    (CART, "https://shop.example", ("https://pay.example", "https://www.example", "http://localhost:3000")),
    (PAY, "https://pay.example", ("https://shop.example", "https://www.example")),
    (MAIN, "https://www.example", ("https://shop.example", "https://pay.example")),
])
def test_each_host_has_its_own_cors_origins(hosts_edge, host, allowed, refused):
    ok = preflight(hosts_edge, host, allowed)
    assert ok.status_code == 200, ok.text
    assert ok.headers.get("access-control-allow-origin") == allowed
    assert "GET" in ok.headers.get("access-control-allow-methods", "")
    for origin in refused:
        answer = preflight(hosts_edge, host, origin)
        assert "access-control-allow-origin" not in answer.headers, (host, origin, answer.headers)


def test_dedicated_hosts_default_to_the_main_hosts_origins(launcher, stubs):
    edge = launcher.edge(ports=dict(stubs.ports), domain=DOMAIN, cors_origins=("https://www.example",))
    for host in (CART, PAY, MAIN):
        answer = preflight(edge, host, "https://www.example")
        assert answer.headers.get("access-control-allow-origin") == "https://www.example", host


def test_each_host_has_its_own_rate_limit_bucket(launcher, stubs, expect_envelope):
    """Three tokens per bucket and one more a second: a host whose bucket is spent answers 429, while
    the next host's first three requests still pass. One shared bucket would let at most one through."""
    edge = launcher.edge(ports=dict(stubs.ports), domain=DOMAIN, rate_limit_rps=1, rate_limit_burst=3)
    ping = ("GET", "/api/v1/ping", None, "cart")
    routes = {MAIN: ping, CART: ping, PAY: ("GET", f"/api/v1/payment/{TOKEN}", None, "payment")}
    for host, route in routes.items():
        answers = [call(edge, host, route) for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 200], (host, [a.text for a in answers])
        spent = [call(edge, host, route) for _ in range(3)]
        assert 429 in [a.status_code for a in spent], host
        expect_envelope(next(a for a in spent if a.status_code == 429), 429, 429)
