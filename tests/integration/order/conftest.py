"""order_svc over real gRPC and real PostgreSQL, with cart_svc's CartCheckout and payment_svc's
PaymentSessions as in-process fakes (tests/support/fake_internal_services.py) on real gRPC."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from checkout.v1 import common_pb2, order_pb2, order_pb2_grpc
from common.grpc_errors import detail_of
from common.settings import Settings
from order_svc.app import Components, components
from tests.support.fake_internal_services import FakeServices, fake_internal_services
from tests.support.grpc_servers import serving
from tests.support.tokens import bearer


@dataclasses.dataclass
class OrderStack:
    stub: order_pb2_grpc.OrderServiceStub
    parts: Components
    fakes: FakeServices
    settings: Settings
    engine: AsyncEngine

    def metadata(self, user: str, key: str = "") -> tuple[tuple[str, str], ...]:
        return (*bearer(self.settings, user), *((("idempotency-key", key),) if key else ()))

    async def place(self, user: str, cart_token: str, key: str = "", **more: Any) -> order_pb2.Order:
        return await self.stub.CreateOrder(order_pb2.CreateOrderRequest(cart_token=cart_token, **more),
                                           metadata=self.metadata(user, key))


@pytest.fixture
async def fakes(settings: Settings) -> AsyncIterator[FakeServices]:
    async with fake_internal_services(settings) as running:
        yield running


@pytest.fixture
def call_timeouts() -> dict[str, float]:
    return {}


@pytest.fixture
async def stack(settings: Settings, order_engine: AsyncEngine, fakes: FakeServices,
                call_timeouts: dict[str, float]) -> AsyncIterator[OrderStack]:
    local = settings.replace(cart_grpc_address=fakes.cart_address, payment_grpc_address=fakes.payment_address,
                             **call_timeouts)
    parts = components(order_engine, local)
    async with serving(local, parts.register) as channel:
        yield OrderStack(order_pb2_grpc.OrderServiceStub(channel), parts, fakes, local, order_engine)
    await parts.close()


async def fails_with(call: Any, code: int) -> common_pb2.ErrorDetail:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    detail = detail_of(caught.value)
    assert detail is not None and detail.code == code, (caught.value.code(), detail)
    return detail


async def count(engine: AsyncEngine, table: Any, *where: Any) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(table).where(*where))).scalar_one()


async def rows(engine: AsyncEngine, statement: Any) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(statement)).all())


async def eventually(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 30.0) -> None:
    """Until `check()` holds (an outcome another process or a background worker brings about)."""
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


async def create_retrying(stub: order_pb2_grpc.OrderServiceStub, request: order_pb2.CreateOrderRequest,
                          metadata: tuple[tuple[str, str], ...], within: float = 60.0) -> order_pb2.Order:
    """What a careful client does: the same request with the same key while the answer is retryable
    (2006 until the lease a killed request left on the key runs out; 4001)."""
    deadline = time.monotonic() + within
    while True:
        try:
            return await stub.CreateOrder(request, metadata=metadata, timeout=30)
        except grpc.aio.AioRpcError as error:
            detail = detail_of(error)
            if detail is None or not detail.retryable or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)
