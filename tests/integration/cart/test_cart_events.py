"""cart_svc's workers as its process runs them (cart_svc.app.workers), on real PostgreSQL and NATS in a
stream namespace of each test's own: the outbox relay publishes the cart's events, the cart-orders
consumer gives back the coupon hold of an order that expired, once."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import nats
import pytest
from nats.js import JetStreamContext
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from cart_svc.app import services, workers
from cart_svc.commands import ConvertCart, ItemChoice, NewCart, ReleaseCart
from cart_svc.tables import audit_log, carts, coupon_redemptions, coupons, dead_letters, plumbing
from cart_svc.workers.orders import DURABLE
from cart_svc.workers.sweeper import CartSweeper
from checkout.events.v1 import events_pb2
from common.events import AGGREGATE_HEADER, MSG_ID_HEADER, EventSettings
from common.nats_streams import close_quietly, delete_streams, ensure_streams
from common.request_context import Caller
from common.settings import Settings
from common.uow import event_payload, uow_factory
from tests.integration.cart.test_cart_checkout import new_coupon
from tests.integration.cart.test_cart_grpc import BACKEND_1M

pytestmark = pytest.mark.slow


async def wait_until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


@pytest.fixture
def namespaced(settings: Settings) -> Settings:
    tag = uuid.uuid4().hex[:10]
    return settings.replace(nats_stream=f"T{tag}", nats_dlq_stream=f"T{tag}_DLQ", nats_subject_prefix=f"t{tag}.",
                            nats_max_age=3600, nats_dlq_max_age=3600, consumer_ack_wait=2, consumer_max_deliver=3,
                            consumer_nak_delays="0.2", outbox_relay_poll_interval=0.2, cart_sweep_interval=0)


@pytest.fixture
async def js(namespaced: Settings) -> AsyncIterator[JetStreamContext]:
    nc = await nats.connect(namespaced.nats_url, connect_timeout=2, allow_reconnect=False)
    stream = nc.jetstream(timeout=5)
    await ensure_streams(stream, EventSettings.from_settings(namespaced))
    try:
        yield stream
    finally:
        with contextlib.suppress(Exception):
            await delete_streams(stream, EventSettings.from_settings(namespaced))
        await close_quietly(nc)


@pytest.fixture
async def running(namespaced: Settings, cart_engine: AsyncEngine, js: JetStreamContext) -> AsyncIterator[None]:
    """The workers of a cart_svc process (the sweeper off: the tests sweep by hand)."""
    started = [worker.start() for worker in workers(cart_engine, namespaced)]
    try:
        yield
    finally:
        for worker in started:
            await worker.stop()


async def messages_of(js: JetStreamContext, settings: Settings, aggregate_id: str) -> list[tuple[str, dict[str, Any]]]:
    info = await js.stream_info(settings.nats_stream)
    found = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        with contextlib.suppress(nats.js.errors.NotFoundError):
            message = await js.get_msg(settings.nats_stream, seq)
            if (message.headers or {}).get(AGGREGATE_HEADER) == aggregate_id:
                found.append((message.subject.removeprefix(settings.nats_subject_prefix), json.loads(message.data)))
    return found


async def publish_order_event(js: JetStreamContext, settings: Settings, subject: str, payload: Any) -> int:
    """Publish as order_svc's relay would; the message's stream sequence."""
    data = json.dumps(payload).encode()
    ack = await js.publish(f"{settings.nats_subject_prefix}{subject}", data, headers={MSG_ID_HEADER: str(uuid.uuid4())})
    return ack.seq


async def consumer_done_with(js: JetStreamContext, settings: Settings, seq: int) -> bool:
    """cart-orders has been handed everything up to stream sequence `seq` and acked or terminated it all."""
    try:
        info = await js.consumer_info(settings.nats_stream, DURABLE)
    except nats.js.errors.NotFoundError:
        return False  # not declared yet
    return info.delivered.stream_seq >= seq and info.num_ack_pending == 0


async def test_the_relay_publishes_created_abandoned_converted_and_reopened_once_each(
        running, namespaced, cart_engine, js):
    built = services(cart_engine, namespaced)
    user = str(uuid.uuid4())
    cart = (await built.carts.create_cart(Caller(user), NewCart(items=(ItemChoice(plan_id=BACKEND_1M),)))).cart
    async with cart_engine.begin() as conn:  # untouched for longer than CART_ABANDONED_AFTER
        await conn.execute(update(carts).where(carts.c.token == cart.token).values(
            updated_at=carts.c.updated_at - datetime.timedelta(seconds=namespaced.cart_abandoned_after + 1)))
    sweeper = CartSweeper(uow_factory(cart_engine, plumbing), namespaced)
    assert cart.token in (await sweeper.sweep()).abandoned
    assert cart.token not in (await sweeper.sweep()).abandoned
    order = str(uuid.uuid4())
    await built.conversions.convert(ConvertCart(cart.token, order, user))
    await built.conversions.release(ReleaseCart(order, reopen_cart=True, reason="abandoned"), actor="test")

    async def all_four() -> bool:
        return len(await messages_of(js, namespaced, cart.token)) >= 4

    await wait_until(all_four, "four cart events on the stream")
    published = await messages_of(js, namespaced, cart.token)
    assert [subject for subject, _ in published] == ["checkout.cart.created", "checkout.cart.abandoned",
                                                     "checkout.cart.converted", "checkout.cart.reopened"]
    payloads = {subject: payload for subject, payload in published}
    assert payloads["checkout.cart.created"]["status"] == "active"
    assert payloads["checkout.cart.abandoned"]["updated_at"] and payloads["checkout.cart.abandoned"]["items"][0][
        "plan_id"] == BACKEND_1M
    assert (payloads["checkout.cart.converted"]["order_token"], payloads["checkout.cart.converted"]["status"]) == (
        order, "converted")
    assert (payloads["checkout.cart.reopened"]["order_token"], payloads["checkout.cart.reopened"]["status"]) == (
        order, "active")


async def test_an_expired_order_gives_its_coupon_hold_back_once(running, namespaced, cart_engine, js):
    built = services(cart_engine, namespaced)
    user = str(uuid.uuid4())
    code = await new_coupon(cart_engine, max_redemptions=1)
    cart = (await built.carts.create_cart(Caller(user), NewCart(items=(ItemChoice(plan_id=BACKEND_1M),)))).cart
    await built.carts.apply_coupon(Caller(user), cart.token, code)
    order = str(uuid.uuid4())
    await built.conversions.convert(ConvertCart(cart.token, order, user))

    async def held() -> int:
        async with cart_engine.connect() as conn:
            return (await conn.execute(select(func.count()).select_from(coupon_redemptions).where(
                coupon_redemptions.c.order_token == order, coupon_redemptions.c.status == "held"))).scalar_one()

    assert await held() == 1
    expired = event_payload(events_pb2.OrderEvent(order_token=order, user_id=user, cart_token=cart.token,
                                                  status="expired", previous="awaiting_payment"))
    await publish_order_event(js, namespaced, "checkout.order.expired", expired)
    await publish_order_event(js, namespaced, "checkout.order.expired", expired)  # redelivered by its producer
    await publish_order_event(js, namespaced, "checkout.order.cancelled",  # an order that held nothing
                              event_payload(events_pb2.OrderEvent(order_token=str(uuid.uuid4()), status="cancelled")))
    last = await publish_order_event(js, namespaced, "checkout.order.cancelled", {"order_token": "not-a-token"})

    async def all_handled() -> bool:
        return await consumer_done_with(js, namespaced, last)

    await wait_until(all_handled, "the cart-orders consumer to handle four events")
    assert await held() == 0
    async with cart_engine.connect() as conn:
        redeemed = (await conn.execute(select(coupons.c.redeemed_count).where(coupons.c.code == code))).scalar_one()
        releases = (await conn.execute(select(audit_log.c.actor, audit_log.c.after).where(
            audit_log.c.entity_type == "coupon", audit_log.c.entity_id == code,
            audit_log.c.action == "release"))).all()
        parked = (await conn.execute(select(dead_letters.c.consumer, dead_letters.c.subject).where(
            dead_letters.c.stream == namespaced.nats_stream))).all()
    assert redeemed == 0
    assert [(actor, after["order_token"], after["reason"]) for actor, after in releases] == [
        ("cart_svc:cart-orders", order, "expired")]
    assert [tuple(row) for row in parked] == [(DURABLE, "checkout.order.cancelled")]  # the unreadable one
