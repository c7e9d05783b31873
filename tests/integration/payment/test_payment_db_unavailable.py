"""A database out of reach is the contract's retryable 503 (4001, gRPC UNAVAILABLE), never 5000:
every pooled connection busy (the pool's wait runs out) and a pooled connection that PostgreSQL
dropped, each through the real interceptor of a real gRPC server (the edge maps 4001 to 503 by
the catalog, common/errors.py)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import grpc
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from checkout.v1 import payment_pb2, payment_pb2_grpc
from common.grpc_errors import detail_of
from common.settings import SCHEMAS, Settings
from payment_svc.app import assemble
from tests.support.grpc_servers import serving
from tests.support.tokens import bearer, new_user


@pytest.fixture
async def small_engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """payment_svc's role with one pooled connection, no overflow, a short wait for it."""
    engine = create_async_engine(settings.service_database_url("payment"), pool_size=1, max_overflow=0,
                                 pool_timeout=0.3, connect_args={"options": f"-c search_path={SCHEMAS['payment']}"})
    yield engine
    await engine.dispose()


async def get_payment(settings: Settings, engine: AsyncEngine) -> grpc.aio.AioRpcError:
    async with serving(settings, assemble(engine, settings).register) as channel:
        stub = payment_pb2_grpc.PaymentServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.GetPayment(payment_pb2.GetPaymentRequest(payment_token=str(uuid.uuid4())),
                                  metadata=bearer(settings, new_user()))
    return caught.value


def assert_unavailable(error: grpc.aio.AioRpcError) -> None:
    detail = detail_of(error)
    assert error.code() == grpc.StatusCode.UNAVAILABLE, error
    assert detail is not None and (detail.code, detail.retryable) == (4001, True), detail
    assert "Error" not in detail.message and "Timeout" not in detail.message  # no exception class named


async def test_an_exhausted_pool_is_4001(settings: Settings, small_engine: AsyncEngine) -> None:
    async with small_engine.connect() as held:  # the pool's only connection, busy
        await held.execute(text("SELECT 1"))
        assert_unavailable(await get_payment(settings, small_engine))


async def test_a_dropped_connection_is_4001(settings: Settings, small_engine: AsyncEngine,
                                            admin_engine: AsyncEngine) -> None:
    async with small_engine.connect() as conn:  # the one connection, back in the pool afterwards
        pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
    async with admin_engine.connect() as admin:
        assert (await admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})).scalar_one()
    assert_unavailable(await get_payment(settings, small_engine))
