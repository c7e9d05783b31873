"""The enrollment consumer against real PostgreSQL and NATS JetStream: exactly one enrollment per
captured payment however often it arrives, the order fulfilled, plan dates, and poison messages
parked in dead_letters (at once, after max deliveries, or by advisory) and replayed."""

from __future__ import annotations

import asyncio
import datetime
import json
import uuid

import pytest
from sqlalchemy import select, update

from common.events import CAPTURED_SUBJECT, CORRELATION_HEADER, MSG_ID_HEADER
from common.tables import audit_log, dead_letters, orders, outbox
from enrollment_svc import dead_letters as dead_letter_service
from enrollment_svc.domain.periods import period_end
from tests.support.event_bus import (
    add_captured, captured_payload, count, drop_streams, enrollments_of, jetstream, make_order, order_row,
    running_consumer, running_relay, unique_events, wait_for,
)

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
async def events(settings):
    chosen = unique_events()
    yield chosen
    await drop_streams(settings.nats_url, chosen)


async def publish(settings, events, data: bytes, msg_id: str | None = None, correlation: str = "") -> None:
    async with jetstream(settings.nats_url) as js:
        from common.nats_streams import ensure_streams

        await ensure_streams(js, events)
        headers = {MSG_ID_HEADER: msg_id or str(uuid.uuid4())}
        if correlation:
            headers[CORRELATION_HEADER] = correlation
        await js.publish(events.wire_subject(CAPTURED_SUBJECT), data, headers=headers)


async def fulfilled(engine, token: str) -> bool:
    return (await order_row(engine, token)).status == "fulfilled"


async def parked(engine, events) -> list:
    async with engine.connect() as conn:
        return list((await conn.execute(select(dead_letters).where(dead_letters.c.stream == events.stream)
                                        .order_by(dead_letters.c.stream_seq))).all())


async def test_one_enrollment_for_an_event_delivered_many_times(engine, settings, events):
    order = await make_order(engine, months=3)
    data = json.dumps(captured_payload(order)).encode()
    for _ in range(5):  # five copies with different ids: five stream messages
        await publish(settings, events, data, correlation="corr-enroll-1")
    await publish(settings, events, data, msg_id="same-id")
    await publish(settings, events, data, msg_id="same-id")  # dropped by JetStream dedup
    async with jetstream(settings.nats_url) as js:
        assert (await js.stream_info(events.stream)).state.messages == 6
    async with running_consumer(engine, settings, events) as consumer:
        await wait_for(lambda: _done(consumer, 6), 20, "all six deliveries handled")
    assert (consumer.stats.enrolled, consumer.stats.already_enrolled, consumer.stats.parked) == (1, 5, 0)

    [enrollment] = await enrollments_of(engine, order.order_token)
    row = await order_row(engine, order.order_token)
    assert row.status == "fulfilled" and row.enrollment_id == enrollment.enrollment_id
    assert (enrollment.user_id, enrollment.plan_id, enrollment.status) == (order.user_id, order.plan_id, "active")
    async with engine.connect() as conn:
        created = (await conn.execute(select(outbox).where(outbox.c.aggregate_id == order.order_token,
                                                           outbox.c.subject == "checkout.enrollment.created"))).all()
        audits = (await conn.execute(select(audit_log.c.entity_type, audit_log.c.action, audit_log.c.correlation_id)
                                     .where(audit_log.c.entity_id.in_([order.order_token, enrollment.enrollment_id])))).all()
    assert len(created) == 1 and created[0].payload["enrollment_id"] == enrollment.enrollment_id
    assert created[0].headers["correlation_id"] == "corr-enroll-1"
    assert sorted((a.entity_type, a.action) for a in audits) == [("enrollment", "created"), ("order", "fulfilled")]
    assert {a.correlation_id for a in audits} == {"corr-enroll-1"}


async def test_relay_to_consumer_end_to_end_with_plan_dates(engine, settings, events):
    made = [await make_order(engine, months=months) for months in (1, 3, 6)]
    async with running_relay(settings, events), running_consumer(engine, settings, events):
        before = datetime.datetime.now(datetime.UTC)
        for order in made:
            await add_captured(engine, order)
        for order in made:
            await wait_for(lambda: fulfilled(engine, order.order_token), 15, "fulfilment")
        after = datetime.datetime.now(datetime.UTC)
    for order in made:
        [enrollment] = await enrollments_of(engine, order.order_token)
        assert before - datetime.timedelta(seconds=1) <= enrollment.starts_at <= after
        assert enrollment.ends_at == period_end(enrollment.starts_at, order.months, "month")
        assert (await order_row(engine, order.order_token)).enrollment_id == enrollment.enrollment_id


async def test_unparsable_payload_is_parked_at_once(engine, settings, events):
    await publish(settings, events, b"{this is not json")
    async with running_consumer(engine, settings, events) as consumer:
        await wait_for(lambda: _true(consumer.stats.parked == 1), 10, "the message parked")
        [letter] = await parked(engine, events)
        assert letter.status == "parked" and letter.deliveries == 1 and "not JSON" in letter.error
        assert bytes(letter.payload) == b"{this is not json"
        assert letter.subject == events.wire_subject(CAPTURED_SUBJECT)
        await asyncio.sleep(0.5)  # terminated: never delivered again
        assert consumer.stats.naks == 0 and len(await parked(engine, events)) == 1


async def test_an_order_that_never_becomes_paid_is_parked_then_replayed(engine, settings, events):
    order = await make_order(engine, status="awaiting_payment")
    await publish(settings, events, json.dumps(captured_payload(order)).encode())
    async with running_consumer(engine, settings, events) as consumer:
        await wait_for(lambda: _true(consumer.stats.parked == 1), 15, "the message parked after max deliveries")
    assert consumer.stats.naks == events.max_deliver - 1
    [letter] = await parked(engine, events)
    assert letter.deliveries == events.max_deliver and "not paid" in letter.error
    assert await enrollments_of(engine, order.order_token) == []

    async with engine.begin() as conn:  # an operator fixes the order
        await conn.execute(update(orders).where(orders.c.order_token == order.order_token).values(status="paid"))
    replayed = await dead_letter_service.replay(engine, letter.dead_letter_id, actor="test-admin")
    assert replayed.status == "replayed" and replayed.replayed_at is not None
    [enrollment] = await enrollments_of(engine, order.order_token)
    assert (await order_row(engine, order.order_token)).enrollment_id == enrollment.enrollment_id
    again = await dead_letter_service.replay(engine, letter.dead_letter_id, actor="test-admin")
    assert again.status == "replayed" and len(await enrollments_of(engine, order.order_token)) == 1


async def test_a_cancelled_order_is_parked_without_retries(engine, settings, events):
    order = await make_order(engine, status="cancelled")
    await publish(settings, events, json.dumps(captured_payload(order)).encode())
    async with running_consumer(engine, settings, events) as consumer:
        await wait_for(lambda: _true(consumer.stats.parked == 1), 10, "the message parked")
    [letter] = await parked(engine, events)
    assert letter.deliveries == 1 and "cancelled" in letter.error and consumer.stats.naks == 0


async def test_deliveries_that_run_out_without_a_verdict_are_parked_from_the_advisory(engine, settings, events):
    """A consumer that dies on every try never says nak: NATS's max-deliveries advisory does."""
    order = await make_order(engine)
    await publish(settings, events, json.dumps(captured_payload(order)).encode())
    fast = unique_events(stream=events.stream, dlq_stream=events.dlq_stream, subject_prefix=events.subject_prefix,
                         ack_wait=0.5, max_deliver=2)
    async with running_consumer(engine, settings, fast, consume=False) as watcher:
        async with jetstream(settings.nats_url) as js:
            sub = await js.pull_subscribe_bind(durable=fast.durable, stream=fast.stream)
            for attempt in (1, 2):  # fetched, never acked: like a process killed mid-message
                [msg] = await sub.fetch(1, timeout=5)
                assert msg.metadata.num_delivered == attempt
                await asyncio.sleep(0.7)
            with pytest.raises(TimeoutError):  # no third delivery; the pull lets NATS notice
                await sub.fetch(1, timeout=1)
        await wait_for(lambda: _true(watcher.stats.parked == 1), 10, "the advisory to park it")
    [letter] = await parked(engine, events)
    assert letter.deliveries == 2 and "no verdict" in letter.error
    assert json.loads(bytes(letter.payload))["order_token"] == order.order_token  # fetched by stream sequence
    assert await enrollments_of(engine, order.order_token) == []
    replayed = await dead_letter_service.replay(engine, letter.dead_letter_id, actor="test-admin")
    assert replayed.status == "replayed" and len(await enrollments_of(engine, order.order_token)) == 1


async def test_concurrent_handlers_of_one_order_create_one_enrollment(engine, settings, events):
    order = await make_order(engine, months=6)
    data = json.dumps(captured_payload(order)).encode()
    for _ in range(4):
        await publish(settings, events, data)
    async with running_consumer(engine, settings, events) as one, running_consumer(engine, settings, events) as two:
        await wait_for(lambda: _true(sum(c.stats.enrolled + c.stats.already_enrolled for c in (one, two)) == 4), 15,
                       "four deliveries handled by two consumers")
    assert one.stats.enrolled + two.stats.enrolled == 1
    assert len(await enrollments_of(engine, order.order_token)) == 1
    assert await count(engine, outbox, outbox.c.aggregate_id == order.order_token,
                       outbox.c.subject == "checkout.enrollment.created") == 1


async def _done(consumer, handled: int) -> bool:
    return consumer.stats.enrolled + consumer.stats.already_enrolled >= handled


async def _true(value: bool) -> bool:
    return value
