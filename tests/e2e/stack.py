"""A whole checkout stack for functional e2e tests: real service processes behind a real edge.

    stack                    module-scoped Stack (see conftest.py): the services named by the
                             `stack_services` fixture (default: cart only), all with this session's
                             database (sample catalog loaded), Redis and NATS, and an Envoy edge in
                             front with a generous rate limit whose /healthz requires every one of
                             them.

A test module that needs more than the cart service overrides the fixture:

    @pytest.fixture(scope="module")
    def stack_services():
        return ("cart", "order", "payment")

Every named service must start: one that exits or never serves fails the module's tests with
its log tail (never a skip), as does an edge that does not come up healthy.

Transport: mutual TLS between the services and from the edge (each process its own certificate of a
CA made for the stack, devstack/certs.py), and stack.client() speaks HTTPS to the edge, checking its
certificate; the plain port stays open (stack.url: the gateway emulator's webhooks). E2E_PLAINTEXT=1
in the environment runs the stack in plaintext instead (GRPC_PLAINTEXT, plain HTTP).

`stack_env` (a dict) adds environment variables to every service. Each stack gets a JetStream
namespace of its own (stream, DLQ stream, subject prefix), so its consumers and outbox relays
never meet other tests' events; its streams are deleted when it stops.

A whole checkout needs all four services (order_svc calls cart_svc's CartCheckout and
payment_svc's PaymentSessions; enrollment comes from events) and the gateway emulator behind
payment_svc (RAZORPAY_BASE_URL / STRIPE_BASE_URL in `stack_env`).

Helpers: stack.client() (httpx.Client on the edge), stack.bearer(user_id, roles) (headers; a new
user when user_id is None), stack.admin() (headers of a new admin), stack.new_coupon(**fields) /
new_sale(**fields) / new_internship(months, price) (through the admin API), and, in async tests
only (the engines live on the session loop), `await stack.execute(sql, **params)` /
`await stack.rows(sql, **params)` as the database's administrator (name the owning schema:
`cart.carts`, `ordering.orders`, …), `await stack.expire_cart(token)` / `await stack.convert_cart(token)`.

Shape checks for the contract's answers: json_ok(response) (status, JSON, x-correlation-id,
snake_case names), check_cart(body), check_estimate(body), money(text), timestamp(text).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import datetime
import os
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncEngine

from common.auth import mint_token
from common.settings import Settings
from devstack import certs
from devstack.ports import free_ports
from edge.settings import UpstreamTls
from tests.support.event_bus import drop_streams, settings_env

if TYPE_CHECKING:  # the classes live in tests/e2e/conftest.py, which pytest imports on its own
    from conftest import EdgeProcess, Launcher, ServiceProcess

# cluster name (edge) -> python module
SERVICE_MODULES: dict[str, str] = {
    "cart": "cart_svc",
    "order": "order_svc",
    "payment": "payment_svc",
    "enrollment": "enrollment_svc",
}
FUNCTIONAL_RATE_LIMIT_RPS = 10_000


@dataclasses.dataclass
class Stack:
    settings: Settings  # what the services were started with (the stack's ports and event namespace)
    admin_engine: AsyncEngine  # the database's administrator: reads and writes across the services' schemas
    launcher: Launcher
    edge: EdgeProcess
    services: dict[str, ServiceProcess]  # behind the edge (SERVICE_ROLE=api when split)
    workers: dict[str, ServiceProcess] = dataclasses.field(default_factory=dict)  # split_workers' twins

    @property
    def url(self) -> str:
        return self.edge.url

    def client(self, **kwargs: Any) -> httpx.Client:
        """An httpx.Client on the edge (use it as a context manager)."""
        return self.edge.client(**kwargs)

    def token(self, user_id: str, roles: list[str] | None = None, ttl_seconds: int = 3600) -> str:
        return mint_token(self.settings, user_id, roles, ttl_seconds)

    def bearer(self, user_id: str | None = None, roles: list[str] | None = None, ttl_seconds: int = 3600) -> dict[str, str]:
        """Authorization headers for `user_id` (a new user when None)."""
        return {"Authorization": f"Bearer {self.token(user_id or str(uuid.uuid4()), roles, ttl_seconds)}"}

    def admin(self) -> dict[str, str]:
        """Authorization headers of a new user with the admin role."""
        return self.bearer(str(uuid.uuid4()), ["admin"])

    # -- set-up through the admin API ---------------------------------------------------------------
    def new_coupon(self, **fields: Any) -> dict:
        """POST /api/v1/admin/coupons (a fresh code and 10 percent unless given) → the coupon."""
        body = {"code": f"E2E{uuid.uuid4().hex[:12].upper()}", "kind": "percent", "value": "10", **fields}
        with self.client() as client:
            return json_ok(client.post("/api/v1/admin/coupons", json=body, headers=self.admin()))

    def new_sale(self, **fields: Any) -> dict:
        """POST /api/v1/admin/sales (a fresh slug and 10 percent unless given) → the sale."""
        body = {"sale_slug": f"e2e-{uuid.uuid4().hex[:12]}", "kind": "percent", "value": "10", **fields}
        with self.client() as client:
            return json_ok(client.post("/api/v1/admin/sales", json=body, headers=self.admin()))

    def new_internship(self, months: Iterable[int] = (1, 3), price: str = "1000.00", title: str = "E2E internship") -> dict:
        """POST /api/v1/admin/internships with one monthly plan per entry of `months` → the internship."""
        body = {"title": title, "plans": [{"period": {"value": m, "unit": "month"}, "price": price} for m in months]}
        with self.client() as client:
            return json_ok(client.post("/api/v1/admin/internships", json=body, headers=self.admin()))

    # -- behind the services' backs, as the database's administrator (async tests only) -------------
    async def execute(self, statement: str, **params: Any) -> int:
        """Run one SQL statement in its own transaction; returns the row count. Name the schema."""
        async with self.admin_engine.begin() as conn:
            result = await conn.execute(text(statement), params)
            return result.rowcount

    async def rows(self, statement: str, **params: Any) -> list[Row[Any]]:
        """The rows of one query. Name the schema (`ordering.orders`, `cart.carts`, …)."""
        async with self.admin_engine.connect() as conn:
            return list((await conn.execute(text(statement), params)).all())

    async def forget_cached_cart(self, token: str) -> None:
        """Drop cart_svc's Redis entry for a cart changed directly in PostgreSQL (no-op without a cache)."""
        import redis.asyncio as aioredis

        client = aioredis.from_url(self.settings.redis_url)
        try:
            await client.delete(f"cart:{token}")
        finally:
            await client.aclose()

    async def expire_cart(self, token: str) -> None:
        count = await self.execute("UPDATE cart.carts SET expires_at = now() - interval '1 second' WHERE token = :token",
                                   token=token)
        assert count == 1, token
        await self.forget_cached_cart(token)

    async def convert_cart(self, token: str) -> None:
        count = await self.execute("UPDATE cart.carts SET status = 'converted' WHERE token = :token", token=token)
        assert count == 1, token
        await self.forget_cached_cart(token)


def stack_settings(settings: Settings, ports: dict[str, int], ops_ports: dict[str, int] | None = None) -> Settings:
    """`settings` (the session's database, Redis and NATS) with the stack's gRPC ports, where order_svc
    finds its peers, and a JetStream namespace of the stack's own (stream, DLQ stream, subject
    prefix), so its consumers and relays never meet other tests' events."""
    tag = uuid.uuid4().hex[:10]
    changes: dict[str, Any] = {f"{name}_grpc_port": port for name, port in ports.items()}
    changes.update(
        nats_stream=f"E{tag}", nats_dlq_stream=f"E{tag}_DLQ", nats_subject_prefix=f"e{tag}.", nats_max_age=3600,
        nats_dlq_max_age=3600, outbox_relay_poll_interval=0.2, db_pool_size=5, log_level="WARNING",
        cart_metrics_port=0, order_metrics_port=0, payment_metrics_port=0, enrollment_metrics_port=0,
    )
    changes.update({f"{name}_metrics_port": port for name, port in (ops_ports or {}).items()})  # /readyz
    if "cart" in ports:
        changes["cart_grpc_address"] = f"127.0.0.1:{ports['cart']}"
    if "payment" in ports:
        changes["payment_grpc_address"] = f"127.0.0.1:{ports['payment']}"
    return settings.replace(**changes)


def service_env(settings: Settings) -> dict[str, str]:
    """What every service of the stack gets: exactly `settings` (DATABASE_URL is the administrator's;
    each service derives its own role's URL from it), nothing inherited that would override them."""
    return settings_env(settings)


def drop_namespace(settings: Settings) -> None:
    """Delete the stack's streams (from sync code: on a loop of its own, in a thread of its own)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, drop_streams(settings)).result(timeout=30)


@contextlib.contextmanager
def running_stack(launcher: Launcher, settings: Settings, admin_engine: AsyncEngine, *, services: Iterable[str] = ("cart",),
                  env: dict[str, str] | None = None, split_workers: bool = False, **edge_overrides: Any) -> Iterator[Stack]:
    """`services` and the edge in front, for the block; any of them not coming up fails the caller with
    its log tail. At the end the services stop and the stack's streams are deleted. `split_workers`:
    each service as SERVICE_ROLE=api behind the edge plus a SERVICE_ROLE=workers twin (its relays,
    consumers and sweepers), as SPLIT_WORKERS=1 `make run` starts them."""
    names = list(dict.fromkeys(services))
    unknown = [name for name in names if name not in SERVICE_MODULES]
    assert not unknown, f"unknown services {unknown}; choose from {sorted(SERVICE_MODULES)}"
    # every port chosen before any service starts (not while the first ones open their connections), and
    # distinct: each is held until all are chosen
    chosen = iter(free_ports(len(names) * (3 if split_workers else 2)))
    ports = {name: next(chosen) for name in names}
    ops_ports = {name: next(chosen) for name in names}  # each service's metrics port: the edge's /readyz asks it
    twin_ports = {name: next(chosen) for name in names} if split_workers else {}
    own = stack_settings(settings, ports, ops_ports)
    # each stack's processes keep their spans in its launcher's directory, never in .run/traces
    child_env = {**service_env(own), "TRACING_DIR": str(launcher.workdir / "traces"), **(env or {})}
    tls = os.environ.get("E2E_PLAINTEXT", "") != "1"
    cert_dir = launcher.workdir / "certs"
    if tls:
        certs.ensure_dev_certs(cert_dir, "interns.localhost")
        launcher.edge_defaults.update(
            upstream_tls=UpstreamTls(str(cert_dir / "ca.pem"), str(cert_dir / "edge.pem"), str(cert_dir / "edge-key.pem")),
            tls_cert_file=str(cert_dir / "edge-https.pem"), tls_key_file=str(cert_dir / "edge-https-key.pem"),
            https_ca=str(cert_dir / "ca.pem"))
    started: dict[str, ServiceProcess] = {}
    twins: dict[str, ServiceProcess] = {}
    try:
        for name in names:
            module = SERVICE_MODULES[name]
            own_tls = {"GRPC_PLAINTEXT": "0", **certs.process_env(cert_dir, module)} if tls else {}
            role = {"SERVICE_ROLE": "api"} if split_workers else {}
            started[name] = launcher.service(module, port=ports[name], env={**child_env, **own_tls, **role}, wait=False)
            if split_workers:
                twin_port = twin_ports[name]
                twin_env = {**child_env, **own_tls, "SERVICE_ROLE": "workers", f"{name.upper()}_GRPC_PORT": str(twin_port),
                            f"{name.upper()}_METRICS_PORT": "0"}
                twins[name] = launcher.service(module, port=twin_port, env=twin_env, wait=False)
        failures = []
        for service in [*started.values(), *twins.values()]:
            try:
                service.wait_serving(credentials=certs.process_env(cert_dir, "developer") if tls else None)
            except RuntimeError as error:  # its message carries the service's log tail
                failures.append(str(error))
        if "payment" in twins:
            edge_overrides.setdefault("webhook_ports", (twins["payment"].port,))
        if failures:
            pytest.fail("\n\n".join(failures), pytrace=False)
        edge_overrides.setdefault("rate_limit_rps", FUNCTIONAL_RATE_LIMIT_RPS)
        edge_overrides.setdefault("healthz_clusters", tuple(started))
        try:
            edge = launcher.edge(ports=ports, ops_ports=ops_ports, **edge_overrides)
            edge.wait_healthz(200)
        except (RuntimeError, AssertionError) as error:
            pytest.fail(f"the edge did not come up healthy: {error}\n{launcher.log_tails()}", pytrace=False)
        yield Stack(own, admin_engine, launcher, edge, started, twins)
    finally:
        launcher.edge_defaults.clear()
        for service in [*started.values(), *twins.values()]:  # first: nothing publishes into the streams while they go
            service.stop()
        drop_namespace(own)


def order_when(api: httpx.Client, headers: dict[str, str], order_token: str, done: Callable[[dict], bool],
               timeout: float = 30.0) -> dict:
    """GET /api/v1/order/{order_token} until `done(order)`: an order moves on events (a payment's
    outcome reaches order_svc over NATS), so a step a client takes is seen a moment later."""
    deadline = time.monotonic() + timeout
    while True:
        order = json_ok(api.get(f"/api/v1/order/{order_token}", headers=headers))
        if done(order):
            return order
        if time.monotonic() > deadline:
            raise AssertionError(f"order {order_token} stayed {order['status']} for {timeout}s")
        time.sleep(0.05)


# --------------------------------------------------------------------------------------------
# What every REST answer of the contract looks like (CONTRACT.md "Wire rules", "Cart")

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
MONEY_RE = re.compile(r"^(0|[1-9][0-9]*)\.[0-9]{2}$")
RFC3339_UTC_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?Z$")
CURRENCIES = ("INR", "USD", "EUR", "GBP")

# the contract's Cart, plus docs/API.md's sale_slug
CART_FIELDS = frozenset({
    "token", "user_id", "status", "items", "currency", "subtotal", "discount_code", "discount_amount", "tax_rate",
    "tax_amount", "total", "expires_at", "device_id", "created_at", "updated_at", "sale_slug",
})
CART_ITEM_FIELDS = frozenset({"item_id", "internship_id", "plan_id", "title", "price", "quantity", "period"})
ESTIMATE_FIELDS = frozenset({
    "cart_token", "currency", "subtotal", "discount_amount", "discounts", "taxable_amount", "taxes", "tax_amount",
    "total", "exchange_rate", "expires_at",
})
SNAKE_CASE_RE = re.compile(r"^[a-z][a-z0-9_]*$")


def money(text: str) -> Decimal:
    assert isinstance(text, str) and MONEY_RE.match(text), f"money must be a 2-place decimal string, got {text!r}"
    return Decimal(text)


def timestamp(text: str) -> datetime.datetime:
    assert isinstance(text, str) and RFC3339_UTC_RE.match(text), f"not an RFC 3339 UTC timestamp: {text!r}"
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def check_snake_case(value: Any) -> None:
    """Every key of every object, however deep, is snake_case (never lowerCamelCase)."""
    if isinstance(value, dict):
        for key, inner in value.items():
            assert SNAKE_CASE_RE.match(key), f"field name {key!r} is not snake_case"
            check_snake_case(inner)
    elif isinstance(value, list):
        for inner in value:
            check_snake_case(inner)


def json_ok(response: httpx.Response, status: int = 200) -> Any:
    """A successful JSON answer with its x-correlation-id and no leaked internals; returns the body."""
    assert response.status_code == status, (response.request.method, str(response.request.url), response.status_code, response.text)
    assert response.headers.get("content-type", "").startswith("application/json"), response.headers
    assert response.headers.get("x-correlation-id"), response.headers
    assert not [name for name in response.headers if name.lower().startswith(("grpc-", "x-envoy-"))], response.headers
    body = response.json()
    check_snake_case(body)
    return body


def check_cart(cart: dict) -> dict:
    """The contract's Cart with every field printed, money as 2-place strings and its sums right."""
    assert set(cart) == CART_FIELDS, sorted(set(cart) ^ CART_FIELDS)
    assert UUID_RE.match(cart["token"]), cart["token"]
    assert cart["user_id"] == "" or UUID_RE.match(cart["user_id"]), cart["user_id"]
    assert cart["status"] in ("draft", "active", "expired", "converted"), cart["status"]
    assert cart["currency"] in CURRENCIES, cart["currency"]
    assert isinstance(cart["discount_code"], str) and isinstance(cart["device_id"], str) and isinstance(cart["sale_slug"], str)
    Decimal(cart["tax_rate"])  # a percent, e.g. "18"
    created, updated, expires = timestamp(cart["created_at"]), timestamp(cart["updated_at"]), timestamp(cart["expires_at"])
    assert created <= updated, cart
    assert isinstance(cart["items"], list)
    subtotal = Decimal("0.00")
    for item in cart["items"]:
        assert set(item) == CART_ITEM_FIELDS, sorted(set(item) ^ CART_ITEM_FIELDS)
        assert UUID_RE.match(item["item_id"]) and UUID_RE.match(item["internship_id"]) and UUID_RE.match(item["plan_id"]), item
        assert isinstance(item["title"], str) and item["title"], item
        assert isinstance(item["quantity"], int) and 1 <= item["quantity"] <= 10, item
        assert set(item["period"]) == {"value", "unit"} and item["period"]["unit"] in ("month", "year"), item
        assert isinstance(item["period"]["value"], int) and item["period"]["value"] > 0, item
        subtotal += money(item["price"]) * item["quantity"]
    assert money(cart["subtotal"]) == subtotal, cart
    discount, tax = money(cart["discount_amount"]), money(cart["tax_amount"])
    assert Decimal("0") <= discount <= subtotal, cart
    assert money(cart["total"]) == subtotal - discount + tax, cart
    if cart["status"] in ("draft", "active"):
        assert (cart["status"] == "active") == bool(cart["items"]), cart
        # a cart lives CART_TTL (24 h) after its last change
        assert expires - updated == datetime.timedelta(hours=24), cart
    return cart


def check_estimate(estimate: dict) -> dict:
    assert set(estimate) == ESTIMATE_FIELDS, sorted(set(estimate) ^ ESTIMATE_FIELDS)
    assert UUID_RE.match(estimate["cart_token"]) and estimate["currency"] in CURRENCIES, estimate
    subtotal, discount = money(estimate["subtotal"]), money(estimate["discount_amount"])
    assert isinstance(estimate["discounts"], list) and isinstance(estimate["taxes"], list), estimate
    for line in estimate["discounts"]:
        assert set(line) == {"code", "description", "amount"}, line
        money(line["amount"])
    assert discount == sum((Decimal(line["amount"]) for line in estimate["discounts"]), Decimal("0.00")), estimate
    assert money(estimate["taxable_amount"]) == subtotal - discount, estimate
    for line in estimate["taxes"]:
        assert set(line) == {"name", "rate", "amount"} and line["name"] in ("CGST", "SGST", "IGST"), line
        Decimal(line["rate"])
        money(line["amount"])
    tax = money(estimate["tax_amount"])
    assert tax == sum((Decimal(line["amount"]) for line in estimate["taxes"]), Decimal("0.00")), estimate
    assert money(estimate["total"]) == subtotal - discount + tax, estimate
    assert Decimal(estimate["exchange_rate"]) > 0, estimate
    timestamp(estimate["expires_at"])
    return estimate
