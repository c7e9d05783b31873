"""The generic event consumer (common/consumer.py) and its dead letters (common/dead_letters.py)
against real PostgreSQL and NATS JetStream: ack after the handler, nak with the configured delay,
dead letters at once / on the last delivery / from the max-deliveries advisory, rebinding after a
NATS restart, and replay through the handler.

Each test has its own JetStream namespace and a scratch schema (tests/support/jetstream.py) for
its dead letters, owned by enrollment_svc's role, which the store connects as."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import pytest
from nats.js.api import ConsumerInfo
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from common.consumed import CannotHandle, ConsumedEvent, RetryLater
from common.consumer import EventConsumer, Subscription, consumer_config
from common.dead_letters import DeadLetterStore
from common.errors import CheckoutError, ErrorCode
from common.events import CORRELATION_HEADER, MSG_ID_HEADER
from common.nats_streams import ensure_streams
from common.plumbing import Plumbing
from common.request_context import correlation_id
from common.settings import Settings
from tests.support.jetstream import (
    PrivateNats,
    drop_streams,
    events_of,
    holds,
    jetstream,
    namespaced,
    running,
    scratch_plumbing,
    wait_for,
)

pytestmark = pytest.mark.timeout(90)

SUBJECT = "checkout.test.happened"
DURABLE = "test-consumer"


@pytest.fixture
async def plumbing(admin_engine: AsyncEngine) -> AsyncIterator[Plumbing]:
    async with scratch_plumbing(admin_engine) as made:
        yield made


@pytest.fixture
def store(enrollment_engine: AsyncEngine, plumbing: Plumbing) -> DeadLetterStore:
    return DeadLetterStore(enrollment_engine, plumbing)


@pytest.fixture
async def ns(settings: Settings) -> AsyncIterator[Settings]:
    chosen = namespaced(settings)
    yield chosen
    await drop_streams(chosen.nats_url, events_of(chosen))


Behaviour = Callable[[int, ConsumedEvent], Awaitable[None]]


@dataclasses.dataclass
class Call:
    event: ConsumedEvent
    at: float
    correlation_id: str


class Handler:
    """Records every call; `behave(n, event)` (n from 1) may raise to refuse it."""

    def __init__(self, behave: Behaviour | None = None) -> None:
        self.calls: list[Call] = []
        self.behave = behave

    async def __call__(self, event: ConsumedEvent) -> None:
        self.calls.append(Call(event, time.monotonic(), correlation_id()))
        if self.behave is not None:
            await self.behave(len(self.calls), event)


def refusing(error: Exception, times: int = 1_000) -> Behaviour:
    async def behave(n: int, event: ConsumedEvent) -> None:
        if n <= times:
            raise error

    return behave


async def publish(ns: Settings, data: bytes, *, subject: str = SUBJECT, msg_id: str | None = None,
                  correlation: str = "", url: str | None = None) -> int:
    """One message on the namespace's stream; returns its stream sequence."""
    events = events_of(ns)
    async with jetstream(url or ns.nats_url) as js:
        await ensure_streams(js, events)
        headers = {MSG_ID_HEADER: msg_id or str(uuid.uuid4())}
        if correlation:
            headers[CORRELATION_HEADER] = correlation
        return (await js.publish(events.wire_subject(subject), data, headers=headers)).seq


async def consumer_info(ns: Settings, durable: str = DURABLE) -> ConsumerInfo:
    async with jetstream(ns.nats_url) as js:
        return await js.consumer_info(events_of(ns).stream, durable)


def settled(ns: Settings, seq: int, durable: str = DURABLE) -> Callable[[], Awaitable[bool]]:
    """True once NATS holds nothing of the durable's in flight and acked (or terminated) up to `seq`:
    the message will never be delivered again."""

    async def check() -> bool:
        info = await consumer_info(ns, durable)
        return info.num_ack_pending == 0 and info.num_pending == 0 and info.ack_floor.stream_seq >= seq

    return check


async def letters(store: DeadLetterStore, ns: Settings) -> list:
    return [letter for letter in await store.list() if letter.stream == events_of(ns).stream]


@contextlib.asynccontextmanager
async def running_consumer(ns: Settings, store: DeadLetterStore, subscriptions: Sequence[Subscription], *,
                           nats_url: str | None = None, name: str = "test-consumer") -> AsyncIterator[EventConsumer]:
    consumer = EventConsumer(store, nats_url or ns.nats_url, events_of(ns), subscriptions, name=name)
    async with running(name, consumer.run):
        await asyncio.wait_for(consumer.ready.wait(), timeout=10)
        yield consumer


def subscription(handler: Handler, durable: str = DURABLE, subjects: tuple[str, ...] = (SUBJECT,)) -> Subscription:
    return Subscription(durable, subjects, handler)


async def test_the_handler_gets_the_event_and_the_ack_comes_after_it(ns, store):
    in_flight: list[int] = []

    async def look_at_nats(n: int, event: ConsumedEvent) -> None:
        in_flight.append((await consumer_info(ns)).num_ack_pending)  # not acked while the handler runs

    handler = Handler(look_at_nats)
    seq = await publish(ns, b'{"token": "t-1", "amount": "10.50"}', msg_id="event-1", correlation="corr-consumer-1")
    async with running_consumer(ns, store, [subscription(handler)]) as consumer:
        await wait_for(settled(ns, seq), 10, "the ack")
    [call] = handler.calls
    assert call.event == ConsumedEvent(SUBJECT, {"token": "t-1", "amount": "10.50"}, "event-1")  # no namespace
    assert call.correlation_id == "corr-consumer-1"  # the producer's, for the handler's logs and rows
    assert in_flight == [1]
    assert (consumer.stats.handled, consumer.stats.retried, consumer.stats.parked) == (1, 0, 0)
    assert await letters(store, ns) == []


class HoldTheFirst:
    """A behaviour that keeps the first delivery's handler running until released."""

    def __init__(self) -> None:
        self.running, self.release = asyncio.Event(), asyncio.Event()

    async def __call__(self, n: int, event: ConsumedEvent) -> None:
        if n == 1:
            self.running.set()
            await self.release.wait()


async def test_a_delivery_that_arrives_while_another_is_handled_starts_at_once(ns, store):
    held = HoldTheFirst()
    first_running, release_first = held.running, held.release
    handler = Handler(held)
    async with running_consumer(ns, store, [subscription(handler)]):
        await publish(ns, b'{"n": 1}')
        await asyncio.wait_for(first_running.wait(), timeout=10)
        last = await publish(ns, b'{"n": 2}')
        await wait_for(holds(lambda: len(handler.calls) == 2), 10, "the second delivery handled meanwhile")
        assert not release_first.is_set() and (await consumer_info(ns)).num_ack_pending == 1  # the first, still held
        release_first.set()
        await wait_for(settled(ns, last), 10, "both acked")
    assert [call.event.payload["n"] for call in handler.calls] == [1, 2]


def second_waits(ns: Settings) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        info = await consumer_info(ns)
        return info.num_ack_pending == 1 and info.num_pending == 1

    return check


async def test_with_one_in_flight_a_delivery_waits_for_the_one_being_handled(ns, store):
    held = HoldTheFirst()
    first_running, release_first = held.running, held.release
    handler = Handler(held)
    one = ns.replace(consumer_max_in_flight=1)
    async with running_consumer(one, store, [subscription(handler)]):
        await publish(one, b'{"n": 1}')
        await asyncio.wait_for(first_running.wait(), timeout=10)
        last = await publish(one, b'{"n": 2}')
        await wait_for(second_waits(one), 10, "the second delivery waiting on NATS")
        released_at = time.monotonic()
        release_first.set()
        await wait_for(settled(one, last), 10, "both acked")
    assert [call.event.payload["n"] for call in handler.calls] == [1, 2]
    assert handler.calls[1].at >= released_at  # it started only once the first was done


async def test_each_subscription_reads_only_its_subjects(ns, store):
    paid, expired = Handler(), Handler()
    seqs = [await publish(ns, b'{"n": 1}', subject="checkout.order.paid"),
            await publish(ns, b'{"n": 2}', subject="checkout.order.expired"),
            await publish(ns, b'{"n": 3}', subject="checkout.order.cancelled")]
    subscriptions = [subscription(paid, "on-paid", ("checkout.order.paid",)),
                     subscription(expired, "on-ended", ("checkout.order.expired", "checkout.order.cancelled"))]
    async with running_consumer(ns, store, subscriptions):
        await wait_for(settled(ns, seqs[0], "on-paid"), 10, "the paid event")
        await wait_for(settled(ns, seqs[2], "on-ended"), 10, "the ended events")
    assert [c.event.subject for c in paid.calls] == ["checkout.order.paid"]
    assert [c.event.subject for c in expired.calls] == ["checkout.order.expired", "checkout.order.cancelled"]


@pytest.mark.parametrize("error", [RetryLater("the order is not paid yet"), RuntimeError("database down")],
                         ids=["retry-later", "unexpected"])
async def test_a_failed_delivery_is_naked_and_comes_back_after_the_delay(ns, store, error):
    ns = ns.replace(consumer_nak_delays=("1.0", "5"), consumer_max_deliver=3)
    handler = Handler(refusing(error, times=1))
    seq = await publish(ns, b'{"token": "t-2"}')
    async with running_consumer(ns, store, [subscription(handler)]) as consumer:
        await wait_for(settled(ns, seq), 15, "the second delivery's ack")
    first, second = handler.calls
    assert second.at - first.at >= 0.9  # NAK_DELAYS[0] = 1 s, not ack_wait and not at once
    assert (consumer.stats.retried, consumer.stats.handled, consumer.stats.parked) == (1, 1, 0)
    assert await letters(store, ns) == []


async def test_cannot_handle_is_parked_at_once_and_never_redelivered(ns, store):
    handler = Handler(refusing(CannotHandle("order o-1 was cancelled")))
    seq = await publish(ns, b'{"token": "t-3"}')
    async with running_consumer(ns, store, [subscription(handler)]) as consumer:
        await wait_for(settled(ns, seq), 10, "the message terminated")
    [letter] = await letters(store, ns)
    assert (letter.consumer, letter.stream_seq, letter.subject, bytes(letter.payload)) == (
        DURABLE, seq, SUBJECT, b'{"token": "t-3"}')
    assert letter.deliveries == 1 and letter.status == "parked" and "cancelled" in letter.error
    assert len(handler.calls) == 1 and consumer.stats.retried == 0 and consumer.stats.parked == 1
    assert (await consumer_info(ns)).num_redelivered == 0


@pytest.mark.parametrize(("data", "reason"), [(b"{this is not json", "not JSON"), (b"\xff\xfe", "not JSON"),
                                              (b"[1, 2]", "not a JSON object"), (b"", "not JSON")])
async def test_a_payload_that_is_not_a_json_object_is_parked_without_calling_the_handler(ns, store, data, reason):
    handler = Handler()
    seq = await publish(ns, data)
    async with running_consumer(ns, store, [subscription(handler)]):
        await wait_for(settled(ns, seq), 10, "the message terminated")
    [letter] = await letters(store, ns)
    assert bytes(letter.payload) == data and reason in letter.error and letter.deliveries == 1
    assert handler.calls == []


async def test_the_last_allowed_delivery_that_fails_is_parked(ns, store):
    handler = Handler(refusing(RetryLater("the order is not paid yet")))
    seq = await publish(ns, b'{"token": "t-4"}')
    async with running_consumer(ns, store, [subscription(handler)]) as consumer:
        await wait_for(settled(ns, seq), 15, "the message terminated")
    [letter] = await letters(store, ns)  # once, though the advisory may name it too
    assert letter.deliveries == ns.consumer_max_deliver == len(handler.calls) == 3
    assert "not paid yet" in letter.error
    assert (consumer.stats.retried, consumer.stats.parked) == (2, 1)


async def test_deliveries_that_run_out_without_a_verdict_are_parked_from_the_advisory_and_replayed(
        ns, store, plumbing, enrollment_engine):
    """A process that dies on every try never says nak: NATS's max-deliveries advisory does, and the
    DLQ stream keeps it for a consumer that starts later."""
    ns = ns.replace(consumer_ack_wait=0.5, consumer_max_deliver=2)
    events = events_of(ns)
    handler = Handler()
    seq = await publish(ns, b'{"token": "t-5"}')
    async with jetstream(ns.nats_url) as js:
        await js.add_consumer(events.stream, consumer_config(events, subscription(handler)))
        sub = await js.pull_subscribe_bind(durable=DURABLE, stream=events.stream)
        for attempt in (1, 2):  # fetched, never acked: like a process killed mid-message
            [msg] = await sub.fetch(1, timeout=5)  # the second waits for ack_wait to pass
            assert msg.metadata.num_delivered == attempt
        with pytest.raises(TimeoutError):  # no third delivery; this pull lets NATS notice
            await sub.fetch(1, timeout=1)

    async with running_consumer(ns, store, [subscription(handler)]) as consumer:
        await wait_for(holds(lambda: consumer.stats.parked == 1), 10, "the advisory to park it")
    [letter] = await letters(store, ns)
    assert letter.deliveries == 2 and letter.stream_seq == seq and "no verdict" in letter.error
    assert bytes(letter.payload) == b'{"token": "t-5"}' and letter.subject == SUBJECT  # fetched by sequence
    assert handler.calls == []

    replayed = await store.replay(letter.dead_letter_id, {DURABLE: handler}, actor="test-admin")
    assert replayed.status == "replayed" and replayed.replayed_at is not None
    assert [c.event.payload for c in handler.calls] == [{"token": "t-5"}]
    again = await store.replay(letter.dead_letter_id, {DURABLE: handler}, actor="test-admin")
    assert again.status == "replayed" and len(handler.calls) == 1  # a replayed letter is not run twice
    async with enrollment_engine.connect() as conn:
        audits = (await conn.execute(select(plumbing.audit_log.c.actor, plumbing.audit_log.c.action)
                                     .where(plumbing.audit_log.c.entity_id == letter.dead_letter_id))).all()
    assert [tuple(a) for a in audits] == [("test-admin", "replayed")]


async def test_a_replay_the_handler_refuses_again_stays_parked_with_the_new_reason(ns, store):
    fixed = asyncio.Event()

    async def until_fixed(n: int, event: ConsumedEvent) -> None:
        if not fixed.is_set():
            raise CannotHandle("the internship is gone")

    handler = Handler(until_fixed)
    seq = await publish(ns, b'{"token": "t-6"}')
    async with running_consumer(ns, store, [subscription(handler)]):
        await wait_for(settled(ns, seq), 10, "the message parked")
    [letter] = await letters(store, ns)

    with pytest.raises(CheckoutError) as refused:
        await store.replay(letter.dead_letter_id, {DURABLE: handler}, actor="ops")
    assert "the internship is gone" in refused.value.message
    still = await store.get(letter.dead_letter_id)
    assert still is not None and still.status == "parked" and still.error.startswith("replay by ops:")

    fixed.set()  # an operator fixed what the error named
    assert (await store.replay(letter.dead_letter_id, {DURABLE: handler}, actor="ops")).status == "replayed"
    assert len(handler.calls) == 3


async def test_replay_refuses_what_it_cannot_run(ns, store):
    handler = Handler(refusing(CannotHandle("no")))
    seq = await publish(ns, b'{"token": "t-7"}')
    async with running_consumer(ns, store, [subscription(handler)]):
        await wait_for(settled(ns, seq), 10, "the message parked")
    [letter] = await letters(store, ns)
    cases = [("not-a-uuid", {DURABLE: handler}, ErrorCode.VALIDATION_FAILED),
             (str(uuid.uuid4()), {DURABLE: handler}, ErrorCode.DEAD_LETTER_NOT_FOUND),
             (letter.dead_letter_id, {"another-consumer": handler}, ErrorCode.VALIDATION_FAILED)]
    for dead_letter_id, handlers, code in cases:
        with pytest.raises(CheckoutError) as refused:
            await store.replay(dead_letter_id, handlers, actor="ops")
        assert refused.value.code is code
    assert len(handler.calls) == 1


async def test_the_consumer_binds_again_after_a_nats_restart(ns, store, tmp_path):
    server = PrivateNats(tmp_path / "nats")
    server.start()
    try:
        handler = Handler()
        await publish(ns, b'{"n": 1}', url=server.url)
        async with running_consumer(ns, store, [subscription(handler)], nats_url=server.url) as consumer:
            await wait_for(holds(lambda: len(handler.calls) == 1), 10, "the first event")
            server.stop()
            server.start()  # same port, same store: stream and durable consumer are still there
            await publish(ns, b'{"n": 2}', url=server.url)
            await wait_for(holds(lambda: len(handler.calls) == 2), 20, "the event published after the restart")
            assert consumer.stats.binds >= 2 and consumer.ready.is_set()
        assert [c.event.payload for c in handler.calls] == [{"n": 1}, {"n": 2}]
    finally:
        server.stop()


async def test_two_processes_of_a_service_share_its_durable_and_each_event_is_handled_once(ns, store):
    handler = Handler()
    seqs = [await publish(ns, f'{{"n": {n}}}'.encode()) for n in range(10)]
    async with running_consumer(ns, store, [subscription(handler)], name="replica-1"), \
            running_consumer(ns, store, [subscription(handler)], name="replica-2"):
        await wait_for(settled(ns, seqs[-1]), 15, "all ten acked")
    assert sorted(c.event.payload["n"] for c in handler.calls) == list(range(10))
