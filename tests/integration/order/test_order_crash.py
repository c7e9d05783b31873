"""The placing saga survives a SIGKILL between any two of its steps, against the real processes:
`python -m cart_svc`, `python -m order_svc`, `python -m payment_svc` and the gateway emulator,
on a database and a NATS stream namespace of the test's own.

- With the client's retry (the same Idempotency-Key, after order_svc restarted): one order, one
  coupon redemption, one gateway order, and the answer the client would have got.
- Without any retry: the restarted order_svc's recovery worker finds the placement abandoned and
  ReleaseCart gives the cart and its coupon back.

These need the real cart_svc (CartCheckout) and payment_svc (PaymentSessions with user_id and
order_expires_at) of issue 10: they run once the services are merged.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import pathlib
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any

import grpc
import nats
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from checkout.v1 import admin_pb2, admin_pb2_grpc, cart_pb2, cart_pb2_grpc, order_pb2, order_pb2_grpc
from common.settings import Settings
from gateway_emulator.runner import RunningEmulator, start_emulator
from tests.integration.order.conftest import create_retrying, eventually
from tests.support.processes import ServiceProcess, fault_env, free_port, inherited_env
from tests.support.tokens import bearer, new_user

pytestmark = pytest.mark.slow
ROOT = pathlib.Path(__file__).resolve().parents[3]
PLAN = "7a1e0000-0000-4000-8000-000000000101"  # sample catalog: 1 month of the backend internship
FAULT_POINTS = ("order_after_placement", "order_after_convert", "order_after_commit", "order_after_session")
KEY_LEASE = 2  # seconds: the retry after a kill waits out the dead request's lease on its key (2006)


@dataclasses.dataclass
class Stack:
    settings: Settings
    tmp: pathlib.Path
    emulator: RunningEmulator
    admin: AsyncEngine  # the test database's administrator: reads across the services' schemas
    ports: dict[str, int]
    tag: str
    processes: list[ServiceProcess] = dataclasses.field(default_factory=list)

    def env(self, **more: str) -> dict[str, str]:
        ports = self.ports
        return {
            "DATABASE_URL": self.settings.database_url, "REDIS_URL": self.settings.redis_url,
            "NATS_URL": self.settings.nats_url, "NATS_STREAM": f"T{self.tag}", "NATS_DLQ_STREAM": f"T{self.tag}_DLQ",
            "NATS_SUBJECT_PREFIX": f"t{self.tag}.", "RAZORPAY_BASE_URL": self.emulator.url,
            "STRIPE_BASE_URL": self.emulator.url, "CART_GRPC_PORT": str(ports["cart"]),
            "ORDER_GRPC_PORT": str(ports["order"]), "PAYMENT_GRPC_PORT": str(ports["payment"]),
            "CART_GRPC_ADDRESS": f"127.0.0.1:{ports['cart']}", "PAYMENT_GRPC_ADDRESS": f"127.0.0.1:{ports['payment']}",
            "CART_METRICS_PORT": "0", "ORDER_METRICS_PORT": "0", "PAYMENT_METRICS_PORT": "0",
            "ENROLLMENT_METRICS_PORT": "0", "ORDER_IDEMPOTENCY_LEASE": str(KEY_LEASE), "ORDER_SWEEP_INTERVAL": "0",
            "LOG_LEVEL": "INFO",
        } | more

    async def start(self, service: str, name: str, **more: str) -> ServiceProcess:
        process = ServiceProcess(f"{service}_svc", self.env(**more), self.tmp / f"{name}.log", self.ports[service])
        self.processes.append(process)
        await asyncio.to_thread(process.wait_serving, 60)
        return process

    def channel(self, service: str) -> grpc.aio.Channel:
        return grpc.aio.insecure_channel(f"127.0.0.1:{self.ports[service]}")

    async def one(self, sql: str, **params: Any) -> Any:
        async with self.admin.connect() as conn:
            return (await conn.execute(text(sql), params)).scalar_one()

    async def all(self, sql: str, **params: Any) -> list[Any]:
        async with self.admin.connect() as conn:
            return list((await conn.execute(text(sql), params)).all())

    def gateway_orders(self) -> list[dict[str, Any]]:
        return list(self.emulator.state()["razorpay"]["orders"])


@pytest.fixture
async def stack(own_settings: Settings, tmp_path: pathlib.Path) -> AsyncIterator[Stack]:
    seed = await asyncio.create_subprocess_exec(  # the sample catalog, as `make run` loads it
        sys.executable, "-m", "cart_svc.seed", cwd=ROOT, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, env=inherited_env() | {"DATABASE_URL": own_settings.database_url})
    output, _ = await asyncio.wait_for(seed.communicate(), 120)
    assert seed.returncode == 0, output.decode()[-2000:]
    admin = create_async_engine(own_settings.database_url, pool_size=2)
    with start_emulator(port=0) as emulator:
        running = Stack(own_settings, tmp_path, emulator, admin,
                        {"cart": free_port(), "order": free_port(), "payment": free_port()}, uuid.uuid4().hex[:10])
        try:
            await running.start("cart", "cart")
            await running.start("payment", "payment")
            yield running
        finally:
            for process in reversed(running.processes):
                process.stop()
            await admin.dispose()
            await _drop_streams(own_settings.nats_url, running.tag)


async def _drop_streams(nats_url: str, tag: str) -> None:
    with contextlib.suppress(Exception):
        nc = await nats.connect(nats_url, connect_timeout=2, allow_reconnect=False)
        try:
            for stream in (f"T{tag}", f"T{tag}_DLQ"):
                with contextlib.suppress(Exception):
                    await nc.jetstream().delete_stream(stream)
        finally:
            await nc.close()


async def a_cart_with_a_coupon(stack: Stack, user: str) -> tuple[str, str]:
    code = f"CRASH{uuid.uuid4().hex[:8].upper()}"
    async with stack.channel("cart") as channel:
        await admin_pb2_grpc.AdminServiceStub(channel).CreateCoupon(
            admin_pb2.CreateCouponRequest(code=code, kind="percent", value="10"),
            metadata=bearer(stack.settings, new_user(), ["admin"]), timeout=10)
        carts = cart_pb2_grpc.CartServiceStub(channel)
        cart = await carts.CreateCart(cart_pb2.CreateCartRequest(items=[cart_pb2.CartItemInput(plan_id=PLAN, quantity=1)]),
                                      metadata=bearer(stack.settings, user), timeout=10)
        cart = await carts.ApplyCoupon(cart_pb2.ApplyCouponRequest(token=cart.token, code=code),
                                       metadata=bearer(stack.settings, user), timeout=10)
    assert cart.discount_code == code
    return cart.token, code


async def the_cart(stack: Stack, user: str, cart_token: str) -> cart_pb2.Cart:
    async with stack.channel("cart") as channel:
        return await cart_pb2_grpc.CartServiceStub(channel).GetCart(cart_pb2.GetCartRequest(token=cart_token),
                                                                    metadata=bearer(stack.settings, user), timeout=10)


async def killed_while_placing(stack: Stack, point: str, request: order_pb2.CreateOrderRequest,
                               metadata: tuple[tuple[str, str], ...]) -> None:
    doomed = await stack.start("order", f"order-{point}", **fault_env(point))
    async with stack.channel("order") as channel:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await order_pb2_grpc.OrderServiceStub(channel).CreateOrder(request, metadata=metadata, timeout=30)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE  # the connection died with the process
    assert await asyncio.to_thread(doomed.wait_killed) == -signal.SIGKILL
    log = doomed.log.read_text()
    assert "fault injected" in log and point in log  # killed by that fault point, not by anything else


LEFT_BEHIND = {
    "order_after_placement": (["converting"], "active", 0, [], 0),
    "order_after_convert": (["converting"], "converted", 1, [], 0),
    "order_after_commit": (["placed"], "converted", 1, ["pending"], 0),
    "order_after_session": (["placed"], "converted", 1, ["pending"], 1),
}


@pytest.mark.parametrize("point", FAULT_POINTS)
async def test_a_kill_at_each_step_then_the_clients_retry_makes_one_order_one_redemption_one_gateway_order(
        stack: Stack, point: str) -> None:
    user = new_user()
    cart_token, code = await a_cart_with_a_coupon(stack, user)
    request = order_pb2.CreateOrderRequest(cart_token=cart_token, billing={"country": "IN", "state": "KA"})
    metadata = (*bearer(stack.settings, user), ("idempotency-key", str(uuid.uuid4())))

    await killed_while_placing(stack, point, request, metadata)

    placements, cart_status, held, order_statuses, gateway_orders = LEFT_BEHIND[point]
    assert [r.state for r in await stack.all(
        "SELECT state FROM ordering.order_placements WHERE cart_token = :c", c=cart_token)] == placements
    assert await stack.one("SELECT status FROM cart.carts WHERE token = :c", c=cart_token) == cart_status
    assert await stack.one("SELECT count(*) FROM cart.coupon_redemptions WHERE code = :k AND status = 'held'",
                           k=code) == held
    assert [r.status for r in await stack.all(
        "SELECT status FROM ordering.orders WHERE cart_token = :c", c=cart_token)] == order_statuses
    assert len(stack.gateway_orders()) == gateway_orders

    await stack.start("order", f"order-after-{point}")
    async with stack.channel("order") as channel:
        stub = order_pb2_grpc.OrderServiceStub(channel)
        order = await create_retrying(stub, request, metadata)
        replay = await stub.CreateOrder(request, metadata=metadata, timeout=30)

    assert order.status == "awaiting_payment" and replay == order
    assert order.discount_code == code and order.payment.amount == order.total
    assert [r.order_token for r in await stack.all(
        "SELECT order_token::text FROM ordering.orders WHERE cart_token = :c", c=cart_token)] == [order.order_token]
    redemptions = await stack.all("SELECT order_token::text, status FROM cart.coupon_redemptions WHERE code = :k",
                                  k=code)
    assert [(r.order_token, r.status) for r in redemptions] == [(order.order_token, "held")]  # one redemption
    assert await stack.one("SELECT redeemed_count FROM cart.coupons WHERE code = :k", k=code) == 1
    assert await stack.one("SELECT order_token::text FROM cart.carts WHERE token = :c", c=cart_token) == order.order_token
    gateway = stack.gateway_orders()
    assert len(gateway) == 1 and gateway[0]["id"] == order.payment.gateway_order_id  # one gateway order
    assert await stack.one("SELECT count(*) FROM payment.payment_sessions WHERE order_token = :o",
                           o=order.order_token) == 1


@pytest.mark.parametrize("point", ["order_after_placement", "order_after_convert"])
async def test_a_kill_before_the_order_exists_and_no_retry_gives_the_cart_and_coupon_back(
        stack: Stack, point: str) -> None:
    user = new_user()
    cart_token, code = await a_cart_with_a_coupon(stack, user)
    request = order_pb2.CreateOrderRequest(cart_token=cart_token)

    await killed_while_placing(stack, point, request, bearer(stack.settings, user))
    [placement] = await stack.all("SELECT order_token::text, state FROM ordering.order_placements "
                                  "WHERE cart_token = :c", c=cart_token)
    assert placement.state == "converting"

    # order_svc comes back; nobody retries: its recovery worker takes the placement for abandoned
    await stack.start("order", f"order-recovery-{point}", ORDER_SWEEP_INTERVAL="0.2", ORDER_PLACEMENT_TIMEOUT="1",
                      ORDER_CART_CALL_TIMEOUT="1")

    async def released() -> bool:
        return await stack.one("SELECT state FROM ordering.order_placements WHERE order_token = :o",
                               o=placement.order_token) == "released"

    await eventually(released, "the abandoned placement released")
    cart = await the_cart(stack, user, cart_token)
    assert cart.status == "active" and cart.discount_code == code  # open again, with its coupon
    assert await stack.one("SELECT count(*) FROM cart.coupon_redemptions WHERE code = :k AND status = 'held'",
                           k=code) == 0
    assert await stack.one("SELECT redeemed_count FROM cart.coupons WHERE code = :k", k=code) == 0
    assert await stack.one("SELECT count(*) FROM ordering.orders WHERE cart_token = :c", c=cart_token) == 0
    assert not stack.gateway_orders()

    async with stack.channel("order") as channel:  # the student comes back: the cart becomes an order
        order = await order_pb2_grpc.OrderServiceStub(channel).CreateOrder(
            request, metadata=bearer(stack.settings, user), timeout=30)
    assert order.status == "awaiting_payment" and order.order_token != placement.order_token
    assert await stack.one("SELECT count(*) FROM cart.coupon_redemptions WHERE code = :k AND status = 'held'",
                           k=code) == 1

