"""Shared pieces of the payment_svc tests (no tests here): a real gateway emulator per test,
gateways built on it with short test timeouts, the payment service on a free port, and orders
written straight into PostgreSQL.

The payment, webhook and reconciliation tests import their fixtures from here
(`from tests.support.payments import …`).
"""

from __future__ import annotations

import dataclasses
import datetime
import uuid
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import grpc
import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from checkout.internal.v1 import payment_sessions_pb2, payment_sessions_pb2_grpc
from checkout.v1 import common_pb2, order_pb2, payment_pb2_grpc
from common.clock import utc_now
from common.config import Settings
from common.grpc_errors import detail_of
from common.server import start_server
from common.tables import audit_log, carts, orders, outbox, payment_tokens
from gateway_emulator import RunningEmulator, start_emulator
from payment_svc.app import build_registration
from payment_svc.gateways.registry import Gateways, build_gateways
from payment_svc.settings import GatewayTuning, PaymentSettings

# short enough that a test of a failure path takes a second or two, long enough for a slow CI box
FAST = PaymentSettings(
    tuning=GatewayTuning(connect_timeout_s=0.5, read_timeout_s=1.0, attempts=3, first_backoff_s=0.02,
                         max_backoff_s=0.1, budget_s=2.5, breaker_failures=5, breaker_cooldown_s=30.0, threads=8),
    open_session_bound_s=6.0,
)


@dataclasses.dataclass
class PaymentStack:
    emulator: RunningEmulator
    settings: Settings
    gateways: Gateways
    payments: payment_pb2_grpc.PaymentServiceStub
    sessions: payment_sessions_pb2_grpc.PaymentSessionsStub
    address: str  # where order_svc's PaymentSessionsClient reaches this payment service


@pytest.fixture
def emulator() -> Iterator[RunningEmulator]:
    running = start_emulator(port=0, webhook_razorpay_url=None, webhook_stripe_url=None)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def payment_settings() -> PaymentSettings:
    return FAST  # a test module may override this fixture


@pytest.fixture
async def stack(settings: Settings, engine: AsyncEngine, emulator: RunningEmulator,
                payment_settings: PaymentSettings) -> AsyncIterator[PaymentStack]:
    on_emulator = dataclasses.replace(settings, razorpay_base_url=emulator.url, stripe_base_url=emulator.url)
    gateways = build_gateways(on_emulator, payment_settings)
    running = await start_server(on_emulator, "127.0.0.1:0", build_registration(engine, on_emulator, gateways,
                                                                                 payment_settings))
    address = f"127.0.0.1:{running.port}"
    channel = grpc.aio.insecure_channel(address)
    try:
        yield PaymentStack(emulator, on_emulator, gateways, payment_pb2_grpc.PaymentServiceStub(channel),
                           payment_sessions_pb2_grpc.PaymentSessionsStub(channel), address)
    finally:
        await channel.close()
        await running.stop(grace=0)
        gateways.close()


async def new_order(engine: AsyncEngine, user_id: str, *, total: str = "1770.00", currency: str = "INR",
                    status: str = "pending", expires_in: datetime.timedelta = datetime.timedelta(hours=2),
                    discount_code: str | None = None) -> str:
    """A converted cart and its order, written directly (what order_svc.place_order would leave)."""
    now = utc_now()
    cart_token, order_token = str(uuid.uuid4()), str(uuid.uuid4())
    amount = Decimal(total)
    async with engine.begin() as conn:
        await conn.execute(insert(carts).values(
            token=cart_token, user_id=user_id, status="converted", items=[], currency=currency, subtotal=amount,
            discount_amount=Decimal(0), tax_rate=Decimal(0), tax_amount=Decimal(0), total=amount,
            expires_at=now + datetime.timedelta(hours=24), analytics_data=[], version=1, created_at=now, updated_at=now))
        await conn.execute(insert(orders).values(
            order_token=order_token, cart_token=cart_token, user_id=user_id, status=status, currency=currency,
            items=[], subtotal=amount, discount_code=discount_code, discount_amount=Decimal(0), taxes=[],
            tax_amount=Decimal(0), total=amount, exchange_rate=Decimal(1), billing={}, expires_at=now + expires_in,
            created_at=now, updated_at=now))
    return order_token


def open_request(order_token: str, user_id: str, *, attempt: int = 1, amount: str = "1770.00", currency: str = "INR",
                 gateway: str = "", return_url: str = "") -> payment_sessions_pb2.OpenSessionRequest:
    return payment_sessions_pb2.OpenSessionRequest(
        order_token=order_token, attempt=attempt, amount=amount, currency=currency, gateway=gateway,
        user_id=user_id, return_url=return_url, description="test order")


async def open_session(stack: PaymentStack, order_token: str, user_id: str, **kwargs: Any) -> order_pb2.PaymentSession:
    return await stack.sessions.OpenSession(open_request(order_token, user_id, **kwargs))


async def fails_with(call: Any, code: int) -> common_pb2.ErrorDetail:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    detail = detail_of(caught.value)
    assert detail is not None, caught.value
    assert detail.code == code, detail
    return detail


async def order_status(engine: AsyncEngine, order_token: str) -> str:
    async with engine.connect() as conn:
        return (await conn.execute(select(orders.c.status).where(orders.c.order_token == order_token))).scalar_one()


async def payment_row(engine: AsyncEngine, payment_token: str) -> Any:
    async with engine.connect() as conn:
        return (await conn.execute(select(payment_tokens).where(payment_tokens.c.token == payment_token))).one()


async def count_rows(engine: AsyncEngine, table: Any, *conditions: Any) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(table).where(*conditions))).scalar_one()


async def events(engine: AsyncEngine, order_token: str, subject: str) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(outbox.c.payload).where(
            outbox.c.aggregate_id == order_token, outbox.c.subject == subject).order_by(outbox.c.seq))).all()
    return [row.payload for row in rows]


async def audit_rows(engine: AsyncEngine, entity_id: str) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(select(audit_log).where(audit_log.c.entity_id == entity_id)
                                         .order_by(audit_log.c.id))).all())


def api_requests(emulator: RunningEmulator, method: str | None = None, path_prefix: str = "", *,
                 in_flight: bool = False) -> list[dict[str, Any]]:
    """The emulator's log of answered gateway API calls (Razorpay and Stripe), in the order they were
    answered; with `in_flight`, the calls it is still answering (e.g. held by a timeout_s hang)."""
    log = emulator.control("GET", "requests")["in_flight" if in_flight else "requests"]
    return [r for r in log if (method is None or r["method"] == method) and r["path"].startswith(path_prefix)]
