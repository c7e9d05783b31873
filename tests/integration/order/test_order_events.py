"""order_svc's consumers and relay on real NATS JetStream (a stream namespace of this test) and
real PostgreSQL (a database of its own: the schema's relay publishes every row it finds): the
workers `assemble` starts take payment and enrollment events and publish the order's own."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import nats
import pytest
from nats.js import JetStreamContext
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from common.db import create_engine
from common.events import MSG_ID_HEADER, EventSettings
from common.nats_streams import close_quietly, delete_streams, ensure_streams
from common.request_context import Caller, caller_var
from common.settings import Settings
from order_svc.app import assemble, components
from order_svc.commands import OrderRequest
from order_svc.tables import orders, plumbing
from order_svc.views import OrderView
from tests.integration.order.conftest import eventually
from tests.support.fake_internal_services import FakeServices, fake_internal_services
from tests.support.tokens import new_user

pytestmark = pytest.mark.slow


class Bus:
    def __init__(self, js: JetStreamContext, events: EventSettings) -> None:
        self.js, self.events = js, events

    async def publish(self, subject: str, payload: dict[str, Any]) -> None:
        await self.js.publish(self.events.wire_subject(subject), json.dumps(payload).encode(),
                              headers={MSG_ID_HEADER: str(uuid.uuid4())})

    async def published(self, subject: str, order_token: str) -> list[dict[str, Any]]:
        info = await self.js.stream_info(self.events.stream)
        found = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            with contextlib.suppress(nats.js.errors.NotFoundError):
                message = await self.js.get_msg(self.events.stream, seq)
                payload = json.loads(message.data or b"{}")
                if message.subject == self.events.wire_subject(subject) and payload.get("order_token") == order_token:
                    found.append(payload)
        return found


@pytest.fixture
async def world(own_settings: Settings) -> AsyncIterator[tuple[Settings, AsyncEngine, FakeServices, Bus]]:
    tag = uuid.uuid4().hex[:10]
    async with fake_internal_services(own_settings) as fakes:
        local = own_settings.replace(
            nats_stream=f"T{tag}", nats_dlq_stream=f"T{tag}_DLQ", nats_subject_prefix=f"t{tag}.",
            consumer_ack_wait=5.0, consumer_max_deliver=3, consumer_nak_delays="0.2,0.2",
            outbox_relay_poll_interval=0.2, order_sweep_interval=0.0,
            cart_grpc_address=fakes.cart_address, payment_grpc_address=fakes.payment_address)
        events = EventSettings.from_settings(local)
        engine = create_engine(local, "order", pool_size=4)
        nc = await nats.connect(local.nats_url, connect_timeout=2, allow_reconnect=False)
        js = nc.jetstream(timeout=5)
        await ensure_streams(js, events)
        assembly = assemble(engine, local)
        for worker in assembly.workers:
            worker.start()
        try:
            yield local, engine, fakes, Bus(js, events)
        finally:
            for worker in assembly.workers:
                await worker.stop(timeout=5)
            for cleanup in assembly.on_stop:
                await cleanup()
            with contextlib.suppress(Exception):
                await delete_streams(js, events)
            await close_quietly(nc)
            await engine.dispose()


async def an_order(settings: Settings, engine: AsyncEngine, fakes: FakeServices) -> OrderView:
    user = new_user()
    parts = components(engine, settings)
    token = caller_var.set(Caller(user_id=user))
    try:
        return await parts.service.create_order(OrderRequest(cart_token=fakes.cart.add_cart(user_id=user)), "")
    finally:
        caller_var.reset(token)
        await parts.close()


def payment_event(order: OrderView, status: str, **more: Any) -> dict[str, Any]:
    assert order.payment is not None
    return {"payment_token": order.payment.payment_token, "order_token": order.order_token, "user_id": order.user_id,
            "attempt": 1, "gateway": "razorpay", "gateway_order_id": order.payment.gateway_order_id,
            "gateway_payment_id": "pay_1", "status": status, "amount": order.total, "currency": order.currency,
            "source": "webhook", "occurred_at": "2026-12-03T10:00:00Z"} | more


async def status_of(engine: AsyncEngine, order_token: str) -> str:
    async with engine.connect() as conn:
        return str((await conn.execute(select(orders.c.status).where(orders.c.order_token == order_token))).scalar_one())


async def outbox_count(engine: AsyncEngine, order_token: str, subject: str) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(plumbing.outbox).where(
            plumbing.outbox.c.aggregate_id == order_token, plumbing.outbox.c.subject == subject))).scalar_one()


async def test_a_capture_pays_the_order_and_its_enrollments_fulfil_it(world) -> None:  # type: ignore[no-untyped-def]
    settings, engine, fakes, bus = world
    order = await an_order(settings, engine, fakes)

    await bus.publish("checkout.payment.captured", payment_event(order, "captured"))
    await bus.publish("checkout.payment.captured", payment_event(order, "captured"))  # a second delivery of it
    await eventually(lambda: _is(engine, order.order_token, "paid"), "the order paid")
    await eventually(lambda: _has(bus, "checkout.order.paid", order.order_token), "checkout.order.paid on NATS")

    [paid] = await bus.published("checkout.order.paid", order.order_token)
    assert paid["user_id"] == order.user_id and paid["payment_token"] == order.payment.payment_token  # type: ignore[union-attr]
    assert paid["previous"] == "awaiting_payment"
    # the order's view of the session: what it knew (the checkout URL, the expiry), with the event's news
    assert order.payment is not None and order.payment.checkout_url and order.payment.expires_at
    knew = order.payment.as_json()
    told = {"payment_token": knew["payment_token"], "gateway": "razorpay", "gateway_order_id": knew["gateway_order_id"],
            "status": "captured", "amount": order.total, "currency": order.currency, "order_token": order.order_token}
    async with engine.connect() as conn:
        view = (await conn.execute(select(orders.c.payment).where(orders.c.order_token == order.order_token))).scalar_one()
        audit = plumbing.audit_log
        [after] = (await conn.execute(select(audit.c.after).where(
            audit.c.entity_id == order.order_token, audit.c.action == "status:paid"))).scalars().all()
    assert view == {**knew, **told} and after["payment"] == view and after["payment_attempt"] == 1
    assert [entry["plan_id"] for entry in paid["lines"]] == [fakes.cart.carts[order.cart_token].template.lines[0]["plan_id"]]
    ids = [str(uuid.uuid4()), str(uuid.uuid4())]
    await bus.publish("checkout.enrollment.created", {
        "order_token": order.order_token, "user_id": order.user_id, "occurred_at": "2026-12-03T10:00:01Z",
        "enrollments": [{"enrollment_id": i, "order_token": order.order_token, "user_id": order.user_id,
                         "status": "active"} for i in ids]})
    await eventually(lambda: _has(bus, "checkout.order.fulfilled", order.order_token), "checkout.order.fulfilled")

    [fulfilled] = await bus.published("checkout.order.fulfilled", order.order_token)
    assert fulfilled["enrollment_ids"] == ids and fulfilled["previous"] == "paid"
    assert await status_of(engine, order.order_token) == "fulfilled"
    assert await outbox_count(engine, order.order_token, "checkout.order.paid") == 1
    async with engine.connect() as conn:
        row = (await conn.execute(select(orders).where(orders.c.order_token == order.order_token))).one()
    assert row.enrollment_ids == ids and row.payment["status"] == "captured"


async def test_a_failed_attempt_makes_the_order_payment_failed(world) -> None:  # type: ignore[no-untyped-def]
    settings, engine, fakes, bus = world
    order = await an_order(settings, engine, fakes)

    await bus.publish("checkout.payment.failed", payment_event(order, "failed"))

    await eventually(lambda: _is(engine, order.order_token, "payment_failed"), "the order payment_failed")
    await eventually(lambda: _has(bus, "checkout.order.payment_failed", order.order_token), "the event")


async def test_a_capture_for_an_unknown_order_is_retried_then_parked(world) -> None:  # type: ignore[no-untyped-def]
    settings, engine, fakes, bus = world
    order = await an_order(settings, engine, fakes)
    stranger = payment_event(order, "captured", order_token=str(uuid.uuid4()))

    await bus.publish("checkout.payment.captured", stranger)
    await bus.publish("checkout.payment.captured", {"order_token": "not a token"})

    async def parked() -> bool:
        async with engine.connect() as conn:
            return (await conn.execute(select(func.count()).select_from(plumbing.dead_letters))).scalar_one() >= 2

    await eventually(parked, "both events parked as dead letters of order-payments")
    async with engine.connect() as conn:
        letters = (await conn.execute(select(plumbing.dead_letters.c.consumer, plumbing.dead_letters.c.error,
                                             plumbing.dead_letters.c.deliveries)
                                      .order_by(plumbing.dead_letters.c.stream_seq))).all()
    assert [letter.consumer for letter in letters] == ["order-payments"] * 2  # nothing else was parked
    assert "not found" in letters[0].error and letters[0].deliveries == 3  # RetryLater until max_deliver
    assert "not a UUID" in letters[1].error and letters[1].deliveries == 1  # never applicable: at once


async def _is(engine: AsyncEngine, order_token: str, status: str) -> bool:
    return await status_of(engine, order_token) == status


async def _has(bus: Bus, subject: str, order_token: str) -> bool:
    return bool(await bus.published(subject, order_token))



