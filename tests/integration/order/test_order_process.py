"""`python -m order_svc` as a real process, SIGKILLed at each fault point of the placing saga and
restarted, with cart_svc and payment_svc as in-process fakes on real gRPC: the client's retry
with the same key makes one order, one conversion and one payment session. (test_order_crash.py
runs the same with the real services.)"""

from __future__ import annotations

import asyncio
import pathlib
import signal
import uuid
from collections.abc import AsyncIterator

import grpc
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from checkout.v1 import order_pb2, order_pb2_grpc
from common.db import create_engine
from common.settings import Settings
from order_svc.tables import order_placements, orders
from tests.integration.order.conftest import create_retrying
from tests.support.fake_internal_services import FakeServices, fake_internal_services
from tests.support.processes import ServiceProcess, fault_env, free_port
from tests.support.tokens import bearer, new_user

pytestmark = pytest.mark.slow
FAULT_POINTS = ("order_after_placement", "order_after_convert", "order_after_commit", "order_after_session")


@pytest.fixture
async def fakes(own_settings: Settings) -> AsyncIterator[FakeServices]:
    async with fake_internal_services(own_settings) as running:
        yield running


@pytest.fixture
async def engine(own_settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(own_settings, "order", pool_size=2)
    yield engine
    await engine.dispose()


def order_env(settings: Settings, fakes: FakeServices, port: int, **more: str) -> dict[str, str]:
    tag = uuid.uuid4().hex[:10]
    return {"DATABASE_URL": settings.database_url, "NATS_URL": settings.nats_url, "NATS_STREAM": f"T{tag}",
            "NATS_DLQ_STREAM": f"T{tag}_DLQ", "NATS_SUBJECT_PREFIX": f"t{tag}.", "ORDER_GRPC_PORT": str(port),
            "ORDER_METRICS_PORT": "0", "CART_GRPC_ADDRESS": fakes.cart_address,
            "PAYMENT_GRPC_ADDRESS": fakes.payment_address, "ORDER_IDEMPOTENCY_LEASE": "1",
            "ORDER_SWEEP_INTERVAL": "0", "LOG_LEVEL": "INFO"} | more


async def wait_serving(process: ServiceProcess) -> None:
    await asyncio.to_thread(process.wait_serving, 60)


@pytest.mark.parametrize("point", FAULT_POINTS)
async def test_order_svc_killed_at_each_point_then_the_retry_makes_one_of_everything(
        own_settings: Settings, fakes: FakeServices, engine: AsyncEngine, tmp_path: pathlib.Path, point: str) -> None:
    user, key, port = new_user(), str(uuid.uuid4()), free_port()
    cart = fakes.cart.add_cart(user_id=user, discount_code="ONCE")
    request = order_pb2.CreateOrderRequest(cart_token=cart)
    metadata = (*bearer(own_settings, user), ("idempotency-key", key))
    doomed = ServiceProcess("order_svc", order_env(own_settings, fakes, port) | fault_env(point),
                            tmp_path / "doomed.log", port)
    restarted = None
    try:
        await wait_serving(doomed)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await order_pb2_grpc.OrderServiceStub(channel).CreateOrder(request, metadata=metadata, timeout=30)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
        assert await asyncio.to_thread(doomed.wait_killed) == -signal.SIGKILL
        assert point in doomed.log.read_text()

        restarted = ServiceProcess("order_svc", order_env(own_settings, fakes, port), tmp_path / "restarted.log", port)
        await wait_serving(restarted)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = order_pb2_grpc.OrderServiceStub(channel)
            order = await create_retrying(stub, request, metadata)
            replay = await stub.CreateOrder(request, metadata=metadata, timeout=30)
    finally:
        for process in (restarted, doomed):
            if process is not None:
                process.stop()

    assert order.status == "awaiting_payment" and replay == order
    async with engine.connect() as conn:
        made = (await conn.execute(select(orders.c.order_token).where(orders.c.cart_token == cart))).scalars().all()
        states = (await conn.execute(select(order_placements.c.state)
                                     .where(order_placements.c.cart_token == cart))).scalars().all()
    assert made == [order.order_token] and states == ["placed"]
    assert list(fakes.cart.conversions) == [order.order_token] and fakes.cart.held("ONCE") == 1
    assert len(fakes.payments.sessions) == 1


