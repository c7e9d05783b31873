"""enrollment_svc's consumer of `checkout.order.paid` against real PostgreSQL and NATS JetStream:
exactly one enrollment per order line however often the event arrives, one
`checkout.enrollment.created` event, plan dates, and poison messages parked in its dead_letters
(at once, on the last failed delivery, or from the max-deliveries advisory) and replayed."""

from __future__ import annotations

import datetime
import json

import pytest
from prometheus_client import REGISTRY

from common.clock import rfc3339, utc_now
from common.consumer import consumer_config
from common.db import create_engine
from common.settings import Settings
from common.uow import event_payload
from enrollment_svc import app, workers
from enrollment_svc.domain.periods import period_end
from tests.support.event_bus import drop_streams, events_of, jetstream, namespaced, running, stream_messages, wait_for
from tests.support.paid_orders import (
    assert_one_enrollment_per_line,
    audits_of,
    consuming,
    created_events,
    database_refuses,
    dead_letters_of,
    enrollments_of,
    order_paid_event,
    order_paid_json,
    order_relay,
    paid_order,
    publish,
    write_paid,
)

pytestmark = pytest.mark.timeout(90)
DURABLE = workers.ORDERS_DURABLE


async def consumer_state(settings: Settings):
    async with jetstream(settings.nats_url) as js:
        return await js.consumer_info(settings.nats_stream, DURABLE)


def retries() -> float:
    return REGISTRY.get_sample_value("checkout_events_consumed_total", {"consumer": DURABLE, "outcome": "retry"}) or 0.0


async def handled(parts: app.Parts, count: int) -> bool:
    return parts.on_order_paid.stats.enrolled + parts.on_order_paid.stats.already_enrolled >= count


async def test_one_enrollment_per_line_for_an_event_delivered_many_times(enrollment_engine, ns):
    order = paid_order(3, 6)
    data = order_paid_json(order)
    for _ in range(5):  # five copies with different ids: five stream messages
        await publish(ns, data, correlation="corr-enroll-1")
    await publish(ns, data, msg_id="same-id")
    await publish(ns, data, msg_id="same-id")  # dropped by JetStream dedup
    async with jetstream(ns.nats_url) as js:
        assert (await js.stream_info(ns.nats_stream)).state.messages == 6
    async with consuming(enrollment_engine, ns) as parts:
        await wait_for(lambda: handled(parts, 6), 20, "all six deliveries handled")
    assert (parts.on_order_paid.stats.enrolled, parts.on_order_paid.stats.already_enrolled) == (1, 5)
    assert await dead_letters_of(enrollment_engine, ns) == []

    rows = await assert_one_enrollment_per_line(enrollment_engine, order)
    [created] = await created_events(enrollment_engine, order.order_token)
    assert created.payload["order_token"] == order.order_token and created.payload["user_id"] == order.user_id
    assert [e["enrollment_id"] for e in created.payload["enrollments"]] == [r.enrollment_id for r in rows]
    assert created.headers["correlation_id"] == "corr-enroll-1"
    audits = await audits_of(enrollment_engine, [r.enrollment_id for r in rows])
    assert sorted((a.entity_type, a.entity_id, a.action) for a in audits) == sorted(
        ("enrollment", r.enrollment_id, "created") for r in rows)
    assert {a.correlation_id for a in audits} == {"corr-enroll-1"}


async def test_from_the_order_outbox_to_enrollment_created_on_the_stream_with_plan_dates(own_settings):
    """The whole path: order_svc's outbox and relay → the consumer → enrollment_svc's outbox and relay."""
    ns = namespaced(own_settings)
    order_engine, enrollment_engine = create_engine(ns, "order", pool_size=2), create_engine(ns, "enrollment", pool_size=2)
    made = [paid_order(1), paid_order(3, 6), paid_order(1, 3, 6)]
    try:
        async with running(order_relay(ns), workers.relay(ns)), consuming(enrollment_engine, ns):
            before = datetime.datetime.now(datetime.UTC)
            for order in made:
                await write_paid(order_engine, order)
            for order in made:
                await wait_for(lambda o=order: _created_published(ns, o.order_token), 20,
                               "checkout.enrollment.created on the stream")
            after = datetime.datetime.now(datetime.UTC)
        for order in made:
            rows = await assert_one_enrollment_per_line(enrollment_engine, order)
            for row, line in zip(rows, order.lines, strict=True):
                assert before - datetime.timedelta(seconds=1) <= row.starts_at <= after
                assert row.ends_at == period_end(row.starts_at, line.value, line.unit)
            [created] = await created_events(enrollment_engine, order.order_token)
            assert created.published_at is not None
            assert [e["ends_at"] for e in created.payload["enrollments"]] == [
                r.ends_at.strftime("%Y-%m-%dT%H:%M:%SZ") for r in rows]
        assert await dead_letters_of(enrollment_engine, ns) == []  # its own enrollment.created is not its input
    finally:
        await drop_streams(ns)
        await order_engine.dispose()
        await enrollment_engine.dispose()


async def test_an_unparsable_payload_is_parked_at_once(enrollment_engine, ns):
    await publish(ns, b"{this is not json")
    retried = retries()
    async with consuming(enrollment_engine, ns):
        await wait_for(lambda: _any(dead_letters_of(enrollment_engine, ns)), 10, "the message parked")
        [letter] = await dead_letters_of(enrollment_engine, ns)
        assert letter.status == "parked" and letter.deliveries == 1 and "not JSON" in letter.error
        assert bytes(letter.payload) == b"{this is not json" and letter.subject == "checkout.order.paid"
        assert letter.consumer == DURABLE
        await wait_for(lambda: _settled(ns), 10, "the message terminated")
        info = await consumer_state(ns)
        assert info.delivered.consumer_seq == 1 and info.num_redelivered == 0  # never delivered again
    assert retries() == retried and len(await dead_letters_of(enrollment_engine, ns)) == 1


async def test_an_order_that_can_never_be_enrolled_is_parked_without_retries(enrollment_engine, ns):
    order = paid_order(3)
    bad = json.loads(order_paid_json(order))
    bad["lines"][0]["period"]["unit"] = "fortnight"
    await publish(ns, json.dumps(bad).encode())
    retried = retries()
    async with consuming(enrollment_engine, ns):
        await wait_for(lambda: _any(dead_letters_of(enrollment_engine, ns)), 10, "the message parked")
        await wait_for(lambda: _settled(ns), 10, "the message terminated")
    [letter] = await dead_letters_of(enrollment_engine, ns)
    assert letter.deliveries == 1 and "period unit" in letter.error and retries() == retried
    assert await enrollments_of(enrollment_engine, order.order_token) == []


async def test_a_database_refusal_is_retried_parked_on_the_last_delivery_then_replayed(
        enrollment_engine, admin_engine, ns):
    order = paid_order(1, 6)
    await publish(ns, order_paid_json(order))
    retried = retries()
    async with database_refuses(admin_engine, order) as refusal:
        async with consuming(enrollment_engine, ns) as parts:
            await wait_for(lambda: _any(dead_letters_of(enrollment_engine, ns)), 15,
                           "the message parked after max deliveries")
        assert retries() - retried == ns.consumer_max_deliver - 1  # nak'ed until the last delivery
        [letter] = await dead_letters_of(enrollment_engine, ns)
        assert letter.deliveries == ns.consumer_max_deliver and refusal in letter.error
        assert await enrollments_of(enrollment_engine, order.order_token) == []
    # the database is fixed; an admin replays the letter through the same handler
    replayed = await parts.dead_letters.replay(letter.dead_letter_id, actor="test-admin")
    assert replayed.status == "replayed" and replayed.replayed_at is not None
    rows = await assert_one_enrollment_per_line(enrollment_engine, order)
    assert len(await created_events(enrollment_engine, order.order_token)) == 1
    again = await parts.dead_letters.replay(letter.dead_letter_id, actor="test-admin")
    assert again.status == "replayed"
    assert [r.enrollment_id for r in await enrollments_of(enrollment_engine, order.order_token)] == [
        r.enrollment_id for r in rows]
    [audit] = [a for a in await audits_of(enrollment_engine, [letter.dead_letter_id]) if a.action == "replayed"]
    assert audit.actor == "test-admin"


async def test_deliveries_that_run_out_without_a_verdict_are_parked_from_the_advisory(enrollment_engine, ns):
    """A consumer that dies on every try never says nak: NATS's max-deliveries advisory does."""
    order = paid_order(3, 1)
    await publish(ns, order_paid_json(order))
    fast = ns.replace(consumer_ack_wait=0.5, consumer_max_deliver=2)
    parts = app.parts(enrollment_engine)
    async with jetstream(ns.nats_url) as js:  # the consumer as enrollment_svc declares it; a process that dies
        await js.add_consumer(fast.nats_stream, consumer_config(events_of(fast), parts.subscriptions[0]))
        sub = await js.pull_subscribe_bind(durable=DURABLE, stream=fast.nats_stream)
        for attempt in (1, 2):  # fetched, never acked: like a process killed mid-message (ack_wait ends each)
            [msg] = await sub.fetch(1, timeout=5)
            assert msg.metadata.num_delivered == attempt
        with pytest.raises(TimeoutError):  # no third delivery; the pull lets NATS notice
            await sub.fetch(1, timeout=1.5)
    worker, _ = workers.consumer(enrollment_engine, fast, parts.subscriptions)
    async with running(worker):
        await wait_for(lambda: _any(dead_letters_of(enrollment_engine, ns)), 10, "the advisory to park it")
    [letter] = await dead_letters_of(enrollment_engine, ns)
    assert letter.deliveries == 2 and "no verdict" in letter.error
    assert json.loads(bytes(letter.payload))["order_token"] == order.order_token  # fetched by stream sequence
    assert await enrollments_of(enrollment_engine, order.order_token) == []
    replayed = await parts.dead_letters.replay(letter.dead_letter_id, actor="test-admin")
    assert replayed.status == "replayed"
    await assert_one_enrollment_per_line(enrollment_engine, order)


async def test_concurrent_handlers_of_one_order_create_one_enrollment_per_line(enrollment_engine, ns):
    order = paid_order(6, 3, 1)
    data = order_paid_json(order)
    for _ in range(4):
        await publish(ns, data)
    async with consuming(enrollment_engine, ns) as one, consuming(enrollment_engine, ns) as two:
        await wait_for(lambda: _total(one, two), 15, "four deliveries handled by two consumers")
    assert one.on_order_paid.stats.enrolled + two.on_order_paid.stats.enrolled == 1
    await assert_one_enrollment_per_line(enrollment_engine, order)
    assert len(await created_events(enrollment_engine, order.order_token)) == 1


async def _created_published(settings: Settings, order_token: str) -> bool:
    events = events_of(settings)
    async with jetstream(settings.nats_url) as js:
        return any(m.subject == events.wire_subject("checkout.enrollment.created")
                   and json.loads(m.data)["order_token"] == order_token for m in await stream_messages(js, events))


async def _settled(settings: Settings) -> bool:
    info = await consumer_state(settings)
    return info.num_ack_pending == 0 and info.num_pending == 0


async def _total(one: app.Parts, two: app.Parts) -> bool:
    return sum(p.on_order_paid.stats.enrolled + p.on_order_paid.stats.already_enrolled for p in (one, two)) == 4


async def _any(rows) -> bool:
    return bool(await rows)


def histogram(name: str, **labels: str) -> tuple[float, float]:
    return (REGISTRY.get_sample_value(f"{name}_count", labels) or 0.0, REGISTRY.get_sample_value(f"{name}_sum", labels) or 0.0)


async def test_enrollment_lag_and_consumer_lag_are_observed_once_per_enrolled_order(enrollment_engine, ns):
    order = paid_order(1)
    paid_at = utc_now() - datetime.timedelta(seconds=42)  # whole seconds on the wire: the lag reads 42 to 43 s
    enrollment_before = histogram("checkout_enrollment_lag_seconds")
    consumer_before = histogram("checkout_event_consumer_lag_seconds", consumer=DURABLE)
    event = order_paid_event(order)
    event.occurred_at = rfc3339(paid_at)
    await publish(ns, json.dumps(event_payload(event)).encode())
    async with consuming(enrollment_engine, ns) as parts:
        await wait_for(lambda: handled(parts, 1), 20, "the delivery handled")
    count, total = (a - b for a, b in zip(histogram("checkout_enrollment_lag_seconds"), enrollment_before, strict=True))
    assert count == 1 and 42 <= total < 43 + 10, total  # + the time the test itself took
    count, total = (a - b for a, b in zip(histogram("checkout_event_consumer_lag_seconds", consumer=DURABLE),
                                          consumer_before, strict=True))
    assert count == 1 and 0 <= total < 10, total  # stored just before the consumer started
    assert REGISTRY.get_sample_value("checkout_event_consumer_pending", {"consumer": DURABLE}) == 0
