"""A service's event consumers: durable JetStream pull consumers that ack only after the handler's
transaction committed.

Each `Subscription` names a durable consumer, the subjects it reads and its handler. For each
delivery: the JSON payload → `handler(event)` (which opens its own unit of work and commits) →
ack. A crash between the commit and the ack redelivers the message, so every handler must be
idempotent (a unique key, or a state machine that refuses a second move). A handler raising
`RetryLater` (or anything unexpected: the database is down…) is nak'ed with a growing delay;
`CannotHandle`, or a payload that is not a JSON object, parks the message at once in the
service's `dead_letters` and terminates it; the last allowed delivery that fails is parked too.

Deliveries can also run out with no verdict (the process died, or ack_wait passed, on every try):
NATS then publishes a max-deliveries advisory, which the DLQ stream keeps; each consumer's watcher
fetches the message by stream sequence and parks it. Parked messages are replayed through the
same handler (common/dead_letters.py).

Each delivery is a CONSUMER span that continues the trace named by the message's `traceparent`
(the relay's PRODUCER span: common/outbox_relay.py), so an event's handling, its unit of work and
the events it records stay in the trace of the request that caused them.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import functools
import json
import logging
from collections.abc import Awaitable, Callable, Sequence

import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from prometheus_client import Counter

from common import dead_letters
from common.consumed import CannotHandle, Handler, RetryLater, parse_event
from common.events import CORRELATION_HEADER, EventSettings
from common.faults import fault_point
from common.nats_streams import close_quietly, connect, ensure_streams
from common.request_context import correlation_id_var, new_correlation_id
from common.retry import RetryPolicy
from common.tracing import CONSUMER, context_from, mark_current_error, span
from common.workers import Worker, sleep_or_stop, unless_stopped

EVENTS_HANDLED = Counter("checkout_events_consumed_total", "Event deliveries, by consumer and outcome",
                         ["consumer", "outcome"])

_log = logging.getLogger(__name__)
_NO_VERDICT = "deliveries ran out with no verdict (the consumer died or ack_wait passed on each try)"
_REMEMBERED_ERRORS = 10_000


@dataclasses.dataclass(frozen=True)
class Subscription:
    durable: str
    subjects: tuple[str, ...]  # outbox subjects
    handler: Handler
    description: str = ""

    @property
    def dlq_durable(self) -> str:
        return f"{self.durable}_dead_letters"


def subject_matches(pattern: str, subject: str) -> bool:
    """NATS subject matching: `*` is one token, a final `>` one or more."""
    wanted, given = pattern.split("."), subject.split(".")
    for index, token in enumerate(wanted):
        if token == ">" and index == len(wanted) - 1:
            return len(given) > index
        if index >= len(given) or (token != "*" and token != given[index]):
            return False
    return len(given) == len(wanted)


def consumer_config(events: EventSettings, subscription: Subscription) -> ConsumerConfig:
    # One subject: `filter_subject`, which every JetStream server honours. Several: `filter_subjects`
    # (NATS 2.10+; an older server ignores it and delivers the whole stream, so `handle` checks the
    # subject too).
    wire = [events.wire_subject(subject) for subject in subscription.subjects]
    return ConsumerConfig(
        durable_name=subscription.durable,
        description=subscription.description or subscription.durable,
        filter_subject=wire[0] if len(wire) == 1 else None,
        filter_subjects=wire if len(wire) > 1 else None,
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=events.ack_wait,
        max_deliver=events.max_deliver,
        max_ack_pending=1000,
    )


def dead_letter_watch_config(events: EventSettings, subscription: Subscription) -> ConsumerConfig:
    return ConsumerConfig(
        durable_name=subscription.dlq_durable,
        description=f"park messages of {subscription.durable} that ran out of deliveries",
        filter_subject=events.max_deliveries_advisory(subscription.durable),
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=30.0,
        max_deliver=-1,
    )


@dataclasses.dataclass
class ConsumerStats:
    """What this process did with its deliveries (the metrics say the same, per consumer)."""

    handled: int = 0  # handler returned, then acked
    retried: int = 0  # nak'ed with a delay
    parked: int = 0  # dead letters this process stored (at once, last delivery, or advisory)
    binds: int = 0  # times the consumers were (re)bound: 1 + reconnects and restarts


class _Reconnected(Exception):
    """The NATS client reconnected: re-declare streams and consumers, bind again."""


class EventConsumer:
    def __init__(self, store: dead_letters.DeadLetterStore, nats_url: str, events: EventSettings,
                 subscriptions: Sequence[Subscription], *, name: str) -> None:
        self._store = store
        self._nats_url = nats_url
        self._events = events
        self._subscriptions = list(subscriptions)
        self._name = name
        self._reconnected = False
        self._last_errors: collections.OrderedDict[tuple[str, int], str] = collections.OrderedDict()
        self.ready = asyncio.Event()  # set once subscribed (tests wait on it)
        self.stats = ConsumerStats()

    async def run(self, stop: asyncio.Event) -> None:
        retry = RetryPolicy(attempts=1, first_delay=0.2, max_delay=5.0)
        failures = 0
        while not stop.is_set():
            nc = None
            try:
                self._reconnected = False
                nc = await unless_stopped(stop, connect(self._nats_url, self._name, on_reconnect=self._on_reconnect))
                if nc is None:
                    return
                js = nc.jetstream(timeout=5)
                await ensure_streams(js, self._events)
                async with asyncio.TaskGroup() as group:
                    for subscription in self._subscriptions:
                        await js.add_consumer(self._events.stream, consumer_config(self._events, subscription))
                        await js.add_consumer(self._events.dlq_stream,
                                              dead_letter_watch_config(self._events, subscription))
                        work = await js.pull_subscribe_bind(durable=subscription.durable, stream=self._events.stream)
                        group.create_task(self._loop(work, functools.partial(self.handle, subscription), stop))
                        watch = await js.pull_subscribe_bind(durable=subscription.dlq_durable,
                                                             stream=self._events.dlq_stream)
                        group.create_task(self._loop(watch, functools.partial(self.on_advisory, js, subscription),
                                                     stop))
                    self.stats.binds += 1
                    self.ready.set()
                    failures = 0
            except* _Reconnected:
                _log.info("re-binding consumers after a reconnect", extra={"consumer": self._name})
            except* Exception as group_error:
                failures += 1
                delay = retry.delay(failures)
                _log.warning("event consumer trouble; restarting it",
                             extra={"consumer": self._name, "error": repr(group_error.exceptions[0]),
                                    "retry_in": round(delay, 2)})
                await sleep_or_stop(stop, delay)
            finally:
                self.ready.clear()
                await close_quietly(nc)

    def _on_reconnect(self) -> None:
        self._reconnected = True

    async def _loop(self, sub: JetStreamContext.PullSubscription, handle: Callable[[Msg], Awaitable[None]],
                    stop: asyncio.Event) -> None:
        """Fetch one delivery at a time and handle each in a task of its own, up to
        CONSUMER_MAX_IN_FLIGHT at once: a delivery that arrives while others are being handled
        starts at once instead of after them. (A fetch of n > 1 waits for n messages or its
        timeout, which would hold a lone message back: so each fetch is for one.) With 1, one
        delivery is handled after the other."""
        slots = asyncio.Semaphore(max(1, self._events.max_in_flight))
        running: set[asyncio.Task[None]] = set()
        failures: list[BaseException] = []

        async def handle_one(msg: Msg) -> None:
            try:
                await handle(msg)
            except Exception as error:  # handle() settles every delivery itself; this is the store or NATS failing
                failures.append(error)
            finally:
                slots.release()

        try:
            while not stop.is_set():
                if self._reconnected:
                    raise _Reconnected()
                if failures:
                    raise failures[0]
                await slots.acquire()
                try:
                    messages = await sub.fetch(1, timeout=1.0)
                except BaseException as error:
                    slots.release()
                    if isinstance(error, nats.errors.TimeoutError):
                        continue
                    raise
                task = asyncio.create_task(handle_one(messages[0]))
                running.add(task)
                task.add_done_callback(running.discard)
        except asyncio.CancelledError:
            for task in running:
                task.cancel()
            raise
        finally:
            if running:  # a stop or a reconnect lets what runs finish (and ack)
                await asyncio.gather(*running, return_exceptions=True)
        if failures:
            raise failures[0]

    # -- one delivery -------------------------------------------------------------------------------
    async def handle(self, subscription: Subscription, msg: Msg) -> None:
        meta = msg.metadata
        seq, delivered = meta.sequence.stream, meta.num_delivered
        headers = msg.headers or {}
        token = correlation_id_var.set(headers.get(CORRELATION_HEADER) or new_correlation_id())
        try:
            with span(f"consume {self._events.local_subject(msg.subject)}", kind=CONSUMER,
                      context=context_from(headers),
                      attributes={"messaging.system": "nats", "messaging.consumer.group.name": subscription.durable,
                                  "messaging.message.id": headers.get("Nats-Msg-Id", ""), "delivery": delivered}):
                await self._handle(subscription, msg, seq, delivered, headers)
        finally:
            correlation_id_var.reset(token)

    async def _handle(self, subscription: Subscription, msg: Msg, seq: int, delivered: int,
                      headers: dict[str, str]) -> None:
        label = subscription.durable
        subject = self._events.local_subject(msg.subject)
        if not any(subject_matches(wanted, subject) for wanted in subscription.subjects):
            # a server without multi-subject filters (NATS < 2.10) sent what this durable
            # does not read: its own cursor, so acking it takes it from nobody else
            await _ack(msg)
            return
        try:
            event = parse_event(subject, msg.data or b"", headers.get("Nats-Msg-Id", ""))
            await subscription.handler(event)
        except CannotHandle as error:
            mark_current_error(error)
            await self._park(subscription, msg, seq, delivered, str(error))
            await msg.term()
            return
        except Exception as error:  # RetryLater, or the database / anything else: try again later
            mark_current_error(error)
            await self._failed(subscription, msg, seq, delivered, error)
            return
        fault_point("consumer_after_commit")
        self._last_errors.pop((label, seq), None)
        self.stats.handled += 1
        EVENTS_HANDLED.labels(label, "handled").inc()
        await _ack(msg)

    async def _failed(self, subscription: Subscription, msg: Msg, seq: int, delivered: int, error: Exception) -> None:
        reason = str(error) if isinstance(error, RetryLater) else f"{type(error).__name__}: {error}"
        if not isinstance(error, RetryLater):
            _log.warning("event handler failed", exc_info=True,
                         extra={"consumer": subscription.durable, "stream_seq": seq, "delivered": delivered})
        self._remember((subscription.durable, seq), reason)
        if delivered >= self._events.max_deliver > 0:
            await self._park(subscription, msg, seq, delivered, reason)
            await msg.term()
            return
        self.stats.retried += 1
        EVENTS_HANDLED.labels(subscription.durable, "retry").inc()
        await msg.nak(delay=self._events.nak_delay(delivered))

    async def _park(self, subscription: Subscription, msg: Msg, seq: int, delivered: int, error: str) -> None:
        parked = await self._store.park(stream=self._events.stream, consumer=subscription.durable, stream_seq=seq,
                                        subject=self._events.local_subject(msg.subject), payload=msg.data or b"",
                                        deliveries=delivered, error=error)
        if parked:
            self.stats.parked += 1
            EVENTS_HANDLED.labels(subscription.durable, "parked").inc()
        _log.warning("event parked as a dead letter",
                     extra={"consumer": subscription.durable, "stream_seq": seq, "error": error})

    def _remember(self, key: tuple[str, int], error: str) -> None:
        self._last_errors[key] = error
        self._last_errors.move_to_end(key)
        while len(self._last_errors) > _REMEMBERED_ERRORS:
            self._last_errors.popitem(last=False)

    # -- max-deliveries advisories -----------------------------------------------------------------
    async def on_advisory(self, js: JetStreamContext, subscription: Subscription, advisory: Msg) -> None:
        try:
            body = json.loads(advisory.data)
            seq, deliveries = int(body["stream_seq"]), int(body.get("deliveries", 0))
        except (ValueError, KeyError, TypeError):
            _log.error("unreadable max-deliveries advisory dropped", extra={"data": advisory.data[:200]})
            await advisory.term()
            return
        error = self._last_errors.pop((subscription.durable, seq), None) or _NO_VERDICT
        try:
            raw = await js.get_msg(self._events.stream, seq)
            subject, payload = self._events.local_subject(raw.subject or ""), raw.data or b""
        except NotFoundError:
            subject, payload = "", b""
            error += " (the message is no longer in the stream)"
        parked = await self._store.park(stream=self._events.stream, consumer=subscription.durable, stream_seq=seq,
                                        subject=subject, payload=payload, deliveries=deliveries, error=error)
        if parked:
            self.stats.parked += 1
            EVENTS_HANDLED.labels(subscription.durable, "parked").inc()
            _log.warning("message parked after max deliveries",
                         extra={"consumer": subscription.durable, "stream_seq": seq, "error": error})
        await _ack(advisory)


async def _ack(msg: Msg) -> None:
    """Ack without waiting for the server's word: a lost ack only means a redelivery, which every
    handler absorbs; waiting would cost a round trip per message."""
    try:
        await msg.ack()
    except Exception as error:
        _log.warning("ack not confirmed; the message may be redelivered", extra={"error": repr(error)})


def consumer_worker(store: dead_letters.DeadLetterStore, nats_url: str, events: EventSettings,
                    subscriptions: Sequence[Subscription], *, name: str) -> tuple[Worker, EventConsumer]:
    consumer = EventConsumer(store, nats_url, events, subscriptions, name=name)
    return Worker(name, consumer.run), consumer
