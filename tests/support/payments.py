"""Shared pieces of the payment_svc tests (no tests here): a real gateway emulator per test,
gateways built on it with short test timeouts, the payment service on a free port, and readers of
the `payment` schema (sessions, outbox, audit log).

payment_svc reads no order, so there is no order row to make: a test picks an order token and
tells OpenSession what order_svc would (owner, amount, the order's expiry). What used to be an
order move is now a `checkout.payment.*` event in payment.outbox, which order_svc consumes.

The payment, webhook and reconciliation tests import their fixtures from here
(`from tests.support.payments import …`).
"""

from __future__ import annotations

import dataclasses
import datetime
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from checkout.internal.v1 import payment_sessions_pb2, payment_sessions_pb2_grpc
from checkout.v1 import common_pb2, order_pb2, payment_pb2_grpc
from common.clock import rfc3339, utc_now
from common.grpc_errors import detail_of
from common.server import start_server
from common.settings import Settings
from gateway_emulator import RunningEmulator, start_emulator
from payment_svc.app import PaymentParts, assemble, build_parts
from payment_svc.gateways.registry import Gateways, build_gateways
from payment_svc.tables import PLUMBING, payment_sessions

outbox, audit_log = PLUMBING.outbox, PLUMBING.audit_log

# Settings for the gateways and OpenSession: short enough that a test of a failure path takes a
# second or two, long enough for a slow CI box.
FAST: dict[str, Any] = dict(
    payment_gateway_connect_timeout=0.5, payment_gateway_read_timeout=1.0, payment_gateway_attempts=3,
    payment_gateway_backoff=0.02, payment_gateway_max_backoff=0.1, payment_gateway_budget=2.5,
    payment_breaker_failures=5, payment_breaker_cooldown=30.0, payment_gateway_connections=8,
    payment_open_session_bound=6.0,
)
ORDER_LIFE = datetime.timedelta(hours=2)


@dataclasses.dataclass
class PaymentStack:
    emulator: RunningEmulator
    settings: Settings
    gateways: Gateways
    payments: payment_pb2_grpc.PaymentServiceStub
    sessions: payment_sessions_pb2_grpc.PaymentSessionsStub
    address: str  # where order_svc's PaymentSessions client would reach this payment service
    parts: PaymentParts  # the same use cases and workers' loops, to drive a sweep or a reconcile by hand


@pytest.fixture
def emulator() -> Iterator[RunningEmulator]:
    running = start_emulator(port=0, webhook_razorpay_url=None, webhook_stripe_url=None)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def payment_settings() -> dict[str, Any]:
    return FAST  # setting overrides; a test module may override this fixture


def on_emulator(settings: Settings, emulator: RunningEmulator, overrides: dict[str, Any]) -> Settings:
    return settings.replace(razorpay_base_url=emulator.url, stripe_base_url=emulator.url, **overrides)


@pytest.fixture
async def stack(settings: Settings, engine: AsyncEngine, emulator: RunningEmulator,
                payment_settings: dict[str, Any]) -> AsyncIterator[PaymentStack]:
    async for running in serve_payments(on_emulator(settings, emulator, payment_settings), engine, emulator):
        yield running


async def serve_payments(settings: Settings, engine: AsyncEngine, emulator: RunningEmulator,
                         stack_type: type[PaymentStack] = PaymentStack, **more: Any) -> AsyncIterator[Any]:
    """payment_svc's servicers in-process on a free port (its workers are not started)."""
    gateways = build_gateways(settings)
    running = await start_server(settings, "127.0.0.1:0", assemble(engine, settings, gateways=gateways).register)
    address = f"127.0.0.1:{running.port}"
    channel = grpc.aio.insecure_channel(address)
    try:
        yield stack_type(emulator, settings, gateways, payment_pb2_grpc.PaymentServiceStub(channel),
                         payment_sessions_pb2_grpc.PaymentSessionsStub(channel), address,
                         build_parts(engine, settings, gateways), **more)
    finally:
        await channel.close()
        await running.stop(grace=0)
        await gateways.close()


def new_order_token() -> str:
    return str(uuid.uuid4())


def order_expiry(after: datetime.timedelta = ORDER_LIFE) -> str:
    return rfc3339(utc_now() + after)


def open_request(order_token: str, user_id: str, *, attempt: int = 1, amount: str = "1770.00", currency: str = "INR",
                 gateway: str = "", return_url: str = "", order_expires_at: str | None = None,
                 payment_method: str = "", cancel_url: str = "") -> payment_sessions_pb2.OpenSessionRequest:
    """What order_svc sends for one attempt of its order."""
    return payment_sessions_pb2.OpenSessionRequest(
        order_token=order_token, attempt=attempt, amount=amount, currency=currency, gateway=gateway,
        user_id=user_id, return_url=return_url, cancel_url=cancel_url, description="test order",
        payment_method=payment_method,
        order_expires_at=order_expiry() if order_expires_at is None else order_expires_at)


async def open_session(stack: PaymentStack, order_token: str, user_id: str, **kwargs: Any) -> order_pb2.PaymentSession:
    return await stack.sessions.OpenSession(open_request(order_token, user_id, **kwargs))


async def fails_with(call: Any, code: int) -> common_pb2.ErrorDetail:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    detail = detail_of(caught.value)
    assert detail is not None, caught.value
    assert detail.code == code, detail
    return detail


async def payment_row(engine: AsyncEngine, payment_token: str) -> Any:
    async with engine.connect() as conn:
        return (await conn.execute(select(payment_sessions).where(payment_sessions.c.token == payment_token))).one()


async def count_rows(engine: AsyncEngine, table: Any, *conditions: Any) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(table).where(*conditions))).scalar_one()


async def events(engine: AsyncEngine, order_token: str, subject: str) -> list[dict[str, Any]]:
    """The payloads of payment.outbox rows of one order (the aggregate id) and subject, in order."""
    async with engine.connect() as conn:
        rows = (await conn.execute(select(outbox.c.payload).where(
            outbox.c.aggregate_id == order_token, outbox.c.subject == subject).order_by(outbox.c.seq))).all()
    return [row.payload for row in rows]


async def captured_once(engine: AsyncEngine, order_token: str) -> dict[str, Any]:
    """What "the order is paid" meant before payment_svc stopped moving orders: a session of the
    order is captured and order_svc has been told exactly once (checkout.payment.captured)."""
    [captured] = await events(engine, order_token, "checkout.payment.captured")
    assert (await payment_row(engine, captured["payment_token"])).status == "captured"
    return captured


async def payment_subjects(engine: AsyncEngine, order_token: str) -> list[str]:
    """Every event subject of one order in payment.outbox, in order."""
    async with engine.connect() as conn:
        return list((await conn.execute(select(outbox.c.subject).where(outbox.c.aggregate_id == order_token)
                                         .order_by(outbox.c.seq))).scalars())


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
