"""The enrollment consumer: a durable JetStream pull consumer of `checkout.payment.captured`.

Each delivery: parse → fulfil_captured in one transaction → commit → ack. Ack only after the
commit, so a crash in between redelivers the message and the handler finds the enrollment.
A handler failure naks with a growing delay; the last allowed delivery that fails is parked in
`dead_letters` and terminated. A payload that can never be parsed is parked and terminated at once.

Deliveries can also run out with no verdict (the process died, or ack_wait passed, on every
try): NATS then publishes a max-deliveries advisory, which the CHECKOUT_DLQ stream keeps; the
watcher here fetches the message by stream sequence (js.get_msg) and parks it.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import json
import logging

import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError
from prometheus_client import Counter
from sqlalchemy.ext.asyncio import AsyncEngine

from common.clock import utc_now
from common.events import CORRELATION_HEADER, EventSettings, fault_point, sleep_or_stop
from common.nats_streams import close_quietly, connect, ensure_enrollment_consumers, ensure_streams
from common.request_context import correlation_id_var, new_correlation_id
from common.retry import RetryPolicy
from enrollment_svc import dead_letters
from enrollment_svc.domain.captured import InvalidEvent, parse_captured
from enrollment_svc.fulfil import CannotFulfil, RetryLater, fulfil_captured

EVENTS_HANDLED = Counter("checkout_enrollment_events_total", "Captured-payment deliveries, by outcome", ["outcome"])

_log = logging.getLogger(__name__)
_NO_VERDICT = "deliveries ran out with no verdict (the consumer died or ack_wait passed on each try)"
_REMEMBERED_ERRORS = 10_000


class _Reconnected(Exception):
    """The NATS client reconnected: re-declare streams and consumers, bind again."""


@dataclasses.dataclass
class ConsumerStats:
    enrolled: int = 0
    already_enrolled: int = 0
    naks: int = 0
    parked: int = 0


class EnrollmentConsumer:
    def __init__(self, engine: AsyncEngine, nats_url: str, events: EventSettings, *, consume: bool = True,
                 watch_dead_letters: bool = True, name: str = "enrollment-consumer") -> None:
        self._engine = engine
        self._nats_url = nats_url
        self._events = events
        self._consume = consume
        self._watch = watch_dead_letters
        self._name = name
        self._reconnected = False
        self._last_errors: collections.OrderedDict[int, str] = collections.OrderedDict()
        self.stats = ConsumerStats()
        self.ready = asyncio.Event()  # set once subscribed (tests wait on it)

    async def run(self, stop: asyncio.Event) -> None:
        retry = RetryPolicy(attempts=1, first_delay=0.2, max_delay=5.0)
        failures = 0
        while not stop.is_set():
            nc = None
            try:
                self._reconnected = False
                nc = await connect(self._nats_url, self._name, on_reconnect=self._on_reconnect)
                js = nc.jetstream(timeout=5)
                await ensure_streams(js, self._events)
                await ensure_enrollment_consumers(js, self._events)
                async with asyncio.TaskGroup() as group:
                    if self._consume:
                        work = await js.pull_subscribe_bind(durable=self._events.durable, stream=self._events.stream)
                        group.create_task(self._loop(work, self.handle, stop))
                    if self._watch:
                        advisories = await js.pull_subscribe_bind(durable=self._events.dlq_durable,
                                                                  stream=self._events.dlq_stream)
                        group.create_task(self._loop(advisories, lambda msg: self.on_advisory(js, msg), stop))
                    self.ready.set()
                    failures = 0
            except* _Reconnected:
                _log.info("re-binding the enrollment consumer after a reconnect")
            except* Exception as group_error:
                failures += 1
                delay = retry.delay(failures)
                _log.warning("enrollment consumer trouble; restarting it",
                             extra={"error": repr(group_error.exceptions[0]), "retry_in": round(delay, 2)})
                await sleep_or_stop(stop, delay)
            finally:
                self.ready.clear()
                await close_quietly(nc)

    def _on_reconnect(self) -> None:
        self._reconnected = True

    async def _loop(self, sub: JetStreamContext.PullSubscription, handle, stop: asyncio.Event) -> None:  # type: ignore[no-untyped-def]
        while not stop.is_set():
            if self._reconnected:
                raise _Reconnected()
            try:
                messages = await sub.fetch(self._events.fetch_batch, timeout=1.0)
            except nats.errors.TimeoutError:
                continue
            for msg in messages:
                await handle(msg)

    # -- one delivery -------------------------------------------------------------------------------
    async def handle(self, msg: Msg) -> None:
        meta = msg.metadata
        seq, delivered = meta.sequence.stream, meta.num_delivered
        headers = msg.headers or {}
        token = correlation_id_var.set(headers.get(CORRELATION_HEADER) or new_correlation_id())
        try:
            try:
                event = parse_captured(msg.data)
            except InvalidEvent as error:
                await self._park(msg, seq, delivered, f"unparsable: {error}")
                await msg.term()
                return
            try:
                async with self._engine.begin() as conn:
                    outcome = await fulfil_captured(conn, event, utc_now())
            except CannotFulfil as error:
                await self._park(msg, seq, delivered, str(error))
                await msg.term()
                return
            except Exception as error:  # RetryLater, or the database / anything else: try again later
                await self._failed(msg, seq, delivered, error)
                return
            fault_point("consumer_after_commit")
            self._last_errors.pop(seq, None)
            if outcome.created:
                self.stats.enrolled += 1
                EVENTS_HANDLED.labels("enrolled").inc()
                _log.info("enrolled", extra={"order_token": event.order_token, "enrollment_id": outcome.enrollment_id})
            else:
                self.stats.already_enrolled += 1
                EVENTS_HANDLED.labels("already_enrolled").inc()
            await _ack(msg)
        finally:
            correlation_id_var.reset(token)

    async def _failed(self, msg: Msg, seq: int, delivered: int, error: Exception) -> None:
        reason = str(error) if isinstance(error, RetryLater) else f"{type(error).__name__}: {error}"
        if not isinstance(error, RetryLater):
            _log.exception("captured event failed", extra={"stream_seq": seq, "delivered": delivered})
        self._remember(seq, reason)
        if delivered >= self._events.max_deliver > 0:
            await self._park(msg, seq, delivered, reason)
            await msg.term()
            return
        self.stats.naks += 1
        EVENTS_HANDLED.labels("retry").inc()
        await msg.nak(delay=self._events.nak_delay(delivered))

    async def _park(self, msg: Msg, seq: int, delivered: int, error: str) -> None:
        parked = await dead_letters.park(
            self._engine, stream=self._events.stream, consumer=self._events.durable, stream_seq=seq,
            subject=msg.subject, payload=msg.data or b"", deliveries=delivered, error=error,
        )
        if parked:
            self.stats.parked += 1
            EVENTS_HANDLED.labels("parked").inc()
        _log.warning("captured event parked as a dead letter", extra={"stream_seq": seq, "error": error})

    def _remember(self, seq: int, error: str) -> None:
        self._last_errors[seq] = error
        self._last_errors.move_to_end(seq)
        while len(self._last_errors) > _REMEMBERED_ERRORS:
            self._last_errors.popitem(last=False)

    # -- max-deliveries advisories -----------------------------------------------------------------
    async def on_advisory(self, js: JetStreamContext, advisory: Msg) -> None:
        try:
            body = json.loads(advisory.data)
            seq, deliveries = int(body["stream_seq"]), int(body.get("deliveries", 0))
        except (ValueError, KeyError, TypeError):
            _log.error("unreadable max-deliveries advisory dropped", extra={"data": advisory.data[:200]})
            await advisory.term()
            return
        error = self._last_errors.pop(seq, None) or _NO_VERDICT
        try:
            raw = await js.get_msg(self._events.stream, seq)
            subject, payload = raw.subject or "", raw.data or b""
        except NotFoundError:
            subject, payload = "", b""
            error += " (the message is no longer in the stream)"
        parked = await dead_letters.park(
            self._engine, stream=self._events.stream, consumer=body.get("consumer", self._events.durable),
            stream_seq=seq, subject=subject, payload=payload, deliveries=deliveries, error=error,
        )
        if parked:
            self.stats.parked += 1
            EVENTS_HANDLED.labels("parked").inc()
            _log.warning("message parked after max deliveries", extra={"stream_seq": seq, "error": error})
        await _ack(advisory)


async def _ack(msg: Msg) -> None:
    """Ack and wait for the server's word; a lost ack only means a harmless redelivery."""
    try:
        await msg.ack_sync(timeout=2.0)
    except Exception as error:
        _log.warning("ack not confirmed; the message may be redelivered", extra={"error": repr(error)})
