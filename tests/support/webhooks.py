"""Shared pieces of the webhook and reconciliation tests (no tests here).

`hooks`: the payment service in-process on a free port (its real gRPC API), a real gateway
emulator whose webhook targets point at a tiny local HTTP receiver, and the receiver itself. The
receiver does what the Envoy edge does for these two routes: the raw body goes into a
google.api.HttpBody byte for byte, the gateway's headers (X-Razorpay-*, Stripe-Signature) go
along as lower-cased gRPC metadata, and the gRPC answer comes back as an HTTP status the
emulator's retry logic reads (OK → 200, the error's HTTP status otherwise). With
`receiver.forward = False` it only records (and answers 200): a test then has the exact bytes and
headers the gateway sent, to replay, tamper with or race.

Everything that waits here is async (the receiver and the in-process server share the test's
event loop, so a blocking wait would deadlock them).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import pytest
from google.api import httpbody_pb2
from prometheus_client import REGISTRY
from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from checkout.v1 import payment_pb2_grpc
from common.errors import code_for
from common.grpc_errors import detail_of
from common.settings import Settings
from common.uow import uow_factory
from gateway_emulator import RunningEmulator
from payment_svc.repository import PaymentRepository
from payment_svc.tables import PLUMBING, webhook_events
from payment_svc.tuning import WebhookTuning
from payment_svc.webhooks import WebhookHandler
from tests.support.payments import PaymentStack, on_emulator, serve_payments

FORWARDED = ("x-razorpay-signature", "x-razorpay-event-id", "stripe-signature")
LOCK_TIMEOUT_S = 0.3  # short, so the "processing failed" test fails fast on a held row lock


@dataclasses.dataclass
class Delivery:
    gateway: str
    body: bytes
    headers: dict[str, str]
    status: int = 0
    answer: dict[str, Any] | None = None

    @property
    def event_id(self) -> str:
        if self.gateway == "razorpay":
            return self.headers.get("x-razorpay-event-id", "")
        return str(json.loads(self.body).get("id", ""))

    @property
    def event_type(self) -> str:
        document = json.loads(self.body)
        return str(document.get("event") or document.get("type") or "")

    def metadata(self, **overrides: str | None) -> tuple[tuple[str, str], ...]:
        headers = {k: v for k, v in self.headers.items() if k in FORWARDED}
        for key, value in overrides.items():
            name = key.replace("_", "-")
            if value is None:
                headers.pop(name, None)
            else:
                headers[name] = value
        return tuple(headers.items())


class WebhookReceiver:
    """A minimal HTTP/1.1 server: one POST per connection, /razorpay or /stripe."""

    def __init__(self, payments: payment_pb2_grpc.PaymentServiceStub) -> None:
        self._payments = payments
        self.forward = True
        self.deliveries: list[Delivery] = []
        self._server: asyncio.AbstractServer | None = None
        self.port = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def url(self, gateway: str) -> str:
        return f"http://127.0.0.1:{self.port}/{gateway}"

    def of(self, event_type: str | None = None, gateway: str | None = None) -> list[Delivery]:
        return [d for d in self.deliveries
                if (event_type is None or d.event_type == event_type) and (gateway is None or d.gateway == gateway)]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = (await reader.readline()).decode("latin-1").split()
            headers: dict[str, str] = {}
            while True:
                line = (await reader.readline()).decode("latin-1")
                if line in ("\r\n", "\n", ""):
                    break
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            gateway = request_line[1].strip("/") if len(request_line) > 1 else ""
            delivery = Delivery(gateway, body, headers)
            self.deliveries.append(delivery)
            status, answer = await self._answer(delivery)
            delivery.status, delivery.answer = status, answer
            payload = json.dumps(answer).encode()
            writer.write(f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {len(payload)}\r\n"
                         f"Connection: close\r\n\r\n".encode() + payload)
            await writer.drain()
        finally:
            writer.close()

    async def _answer(self, delivery: Delivery) -> tuple[int, dict[str, Any]]:
        if not self.forward:
            return 200, {"recorded": True}
        method = {"razorpay": self._payments.RazorpayWebhook, "stripe": self._payments.StripeWebhook}.get(delivery.gateway)
        if method is None:
            return 404, {}
        try:
            ack = await method(httpbody_pb2.HttpBody(content_type=delivery.headers.get("content-type", ""),
                                                      data=delivery.body), metadata=delivery.metadata())
        except grpc.aio.AioRpcError as error:
            detail = detail_of(error)
            if detail is None:
                return 500, {"grpc": error.code().name}
            return code_for(detail.code).spec.http_status, {"code": detail.code, "message": detail.message,
                                                            "retryable": detail.retryable}
        return 200, {"received": ack.received, "duplicate": ack.duplicate, "event_id": ack.event_id}


@dataclasses.dataclass
class HookStack(PaymentStack):
    receiver: WebhookReceiver = None  # type: ignore[assignment]


@pytest.fixture
async def hooks(settings: Settings, engine: AsyncEngine, emulator: RunningEmulator,
                payment_settings: dict[str, Any]) -> AsyncIterator[HookStack]:
    overrides = {**payment_settings, "payment_webhook_lock_timeout": LOCK_TIMEOUT_S}
    async for stack in serve_payments(on_emulator(settings, emulator, overrides), engine, emulator, HookStack):
        stack.receiver = WebhookReceiver(stack.payments)
        await stack.receiver.start()
        await asyncio.to_thread(emulator.set_webhook_targets, razorpay=stack.receiver.url("razorpay"),
                                stripe=stack.receiver.url("stripe"), retry_delays=[0.3, 0.5, 1.0, 2.0])
        try:
            yield stack
        finally:
            await asyncio.to_thread(emulator.set_webhook_targets, razorpay=None, stripe=None)
            await stack.receiver.stop()


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 10.0, what: str = "") -> Any:
    """Await `check()` until it returns something truthy; its last value otherwise fails the test."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}: {value!r}")
        await asyncio.sleep(0.02)


async def emulator_events(emulator: RunningEmulator, order_id: str) -> list[dict[str, Any]]:
    return (await asyncio.to_thread(emulator.webhooks, None, order_id))["events"]


async def settled(emulator: RunningEmulator, order_id: str, count: int, timeout: float = 10.0,
                  states: tuple[str, ...] = ("delivered", "failed", "dropped")) -> list[dict[str, Any]]:
    """Wait until `count` webhook events of the order are done being sent; returns them."""
    async def check() -> list[dict[str, Any]] | None:
        found = await emulator_events(emulator, order_id)
        return found if len(found) >= count and all(e["state"] in states for e in found) else None
    return await eventually(check, timeout, f"{count} settled webhooks of {order_id}")


async def stored_event(engine: AsyncEngine, gateway: str, event_id: str) -> Any:
    async with engine.connect() as conn:
        return (await conn.execute(select(webhook_events).where(
            webhook_events.c.gateway == gateway, webhook_events.c.event_id == event_id))).first()


async def webhook_audit(engine: AsyncEngine, gateway: str, event_id: str) -> list[str]:
    """The actions of a webhook event's audit rows, in order: its own (`webhook:<verdict>`), and the
    status row of a change it made, which carries the event (`status:captured`, `status:failed`)."""
    audit_log, key = PLUMBING.audit_log, f"{gateway}:{event_id}"
    async with engine.connect() as conn:
        rows = (await conn.execute(select(audit_log.c.action).where(or_(
            and_(audit_log.c.entity_type == "webhook", audit_log.c.entity_id == key),
            and_(audit_log.c.entity_type == "payment", audit_log.c.after["webhook_event"]["id"].astext == key)))
            .order_by(audit_log.c.id))).all()
    return [row.action for row in rows]


def signature_failures(gateway: str) -> float:
    return REGISTRY.get_sample_value("checkout_webhook_signature_failures_total", {"gateway": gateway}) or 0.0


def webhook_count(gateway: str, verdict: str) -> float:
    return REGISTRY.get_sample_value("checkout_webhooks_total", {"gateway": gateway, "verdict": verdict}) or 0.0


def webhook_handler(engine: AsyncEngine, tuning: WebhookTuning, clock: Callable[[], float] = time.time) -> WebhookHandler:
    """The handler both webhook RPCs call, on its own (no gRPC), with the secrets of `tuning`."""
    return WebhookHandler(uow_factory(engine, PLUMBING), PaymentRepository(), tuning, clock=clock)


def http_body(data: bytes, content_type: str = "application/json") -> httpbody_pb2.HttpBody:
    return httpbody_pb2.HttpBody(content_type=content_type, data=data)
