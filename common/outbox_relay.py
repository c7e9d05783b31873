"""The outbox relay: publishes outbox rows to NATS JetStream, in `seq` order, at least once.

For each unpublished row, oldest first: publish with `Nats-Msg-Id` = the row's id (JetStream
drops a repeat inside the stream's duplicate window), wait for the PubAck, then set
`published_at`. A crash between the PubAck and the mark re-publishes the row on restart, and
JetStream drops the copy. A batch goes out in consecutive waves (`waves`), each sent at once and
awaited as one: a wave ends before an aggregate's second row, so that row goes out only after the
PubAck of the one before. A failed publish stops the batch after its wave, so nothing of an
aggregate is published past a row of it that is not, and per-aggregate order holds. The marks of
a batch ride on the statement that reads the next one when rows follow within
MARK_LINGER_SECONDS (one statement per batch under load), else they are set alone.

Each service relays its own schema's outbox (common/plumbing.py); per schema only one relay
publishes at a time: the leader holds a session-level PostgreSQL advisory lock on its own
connection (the same connection reads and marks rows, so losing it ends both the lock and the
work); standbys (the service's other replicas) try the lock every second. The leader LISTENs for
the schema's `outbox_<schema>` notification (migrations/plumbing.py) and polls besides. NATS
trouble is retried forever with capped, jittered backoff; the client reconnects by itself and
streams are re-declared.

Every service process runs one as a worker (`relay_worker`); `python -m common.outbox_relay SERVICE`
runs one on its own (a deployment that scales relays apart from the service, and the crash tests).
Details and trade-offs: docs/EVENTS.md.

Tracing: a row whose `headers` carry `traceparent` (the span the event was recorded in,
common/uow.py) is published inside a PRODUCER span, child of that one, from the send to the
PubAck; the message's headers carry that span's context, which the consumer continues.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime
import functools
import json
import logging
import signal
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

import nats.errors
import nats.js.errors
import psycopg
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import PubAck
from opentelemetry import trace
from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import MetaData
from sqlalchemy.engine import make_url

from common.events import AGGREGATE_HEADER, CORRELATION_HEADER, MSG_ID_HEADER, OUTBOX_SEQ_HEADER, EventSettings
from common.faults import fault_point, warn_about_fault_settings
from common.logs import configure_logging
from common.metrics import DEAD_LETTERS_PARKED, EVENTS_PUBLISHED, OUTBOX_LAG
from common.nats_streams import close_quietly, connect, ensure_streams
from common.plumbing import Plumbing, plumbing_tables
from common.retry import RetryPolicy
from common.settings import SCHEMAS, SERVICES, Settings, process_settings
from common.tracing import PRODUCER, Span, configure_tracing, context_from, inject, mark_error, shutdown_tracing, tracer
from common.workers import Worker, sleep_or_stop

LOCK_RETRY_SECONDS = 1.0
DEAD_LETTER_COUNT_SECONDS = 30.0

PUBLISHED = Counter("checkout_outbox_published_total", "Outbox rows published, by PubAck (new or duplicate)",
                    ["schema", "ack"])
PUBLISH_FAILURES = Counter("checkout_outbox_publish_failures_total", "Relay batches that failed to publish (retried)",
                           ["schema"])
LEADER = Gauge("checkout_outbox_relay_leader", "1 while this process is the publishing relay of the schema", ["schema"])
PUBLISH_LAG = Histogram(
    "checkout_outbox_publish_lag_seconds", "Outbox row insert → PubAck",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)

_log = logging.getLogger(__name__)

_SELECT_PENDING = """
    SELECT id::text, seq, aggregate_id, subject, payload, headers, created_at
    FROM "{schema}".outbox WHERE published_at IS NULL ORDER BY seq LIMIT %s
"""
_COUNT_PARKED = """SELECT count(*) FROM "{schema}".dead_letters WHERE status = 'parked'"""
_MARK_PUBLISHED = 'UPDATE "{schema}".outbox SET published_at = now() WHERE id = ANY(%s::uuid[]) AND published_at IS NULL'
# The marks of the last batch and the read of the next in one statement (the read does not see the
# marks it makes: it leaves those rows out itself).
_MARK_AND_SELECT_PENDING = """
    WITH marked AS (UPDATE "{schema}".outbox SET published_at = now() WHERE id = ANY(%s::uuid[]) AND published_at IS NULL)
    SELECT id::text, seq, aggregate_id, subject, payload, headers, created_at
    FROM "{schema}".outbox WHERE published_at IS NULL AND NOT id = ANY(%s::uuid[]) ORDER BY seq LIMIT %s
"""
# Acknowledged rows wait this long for the next batch's read to mark them; then they are marked alone.
MARK_LINGER_SECONDS = 0.02


@dataclasses.dataclass(frozen=True)
class OutboxRow:
    id: str
    seq: int
    aggregate_id: str
    subject: str
    payload: Any
    headers: dict[str, Any]
    created_at: datetime.datetime


@dataclasses.dataclass
class RelayStats:
    published: int = 0
    duplicates: int = 0  # PubAcks that said "already stored": a re-publish after a crash or a retry
    failures: int = 0
    terms_as_leader: int = 0
    standby_tries: int = 0  # lock attempts that found another leader


# What the leading relay of each schema in this process reads into its gauges (one per schema).
_LEADING: dict[str, OutboxRelay] = {}

# Called with (subject, payload) once per event on its first PubAck: a service's own counters
# (payment_svc counts payment outcomes by gateway).
OnPublished = Callable[[str, Mapping[str, Any]], None]


class PublishFailed(Exception):
    """NATS did not take a batch (down, restarting, no stream): retried after a backoff."""


def libpq_dsn(database_url: str) -> str:
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


def event_headers(row: OutboxRow, span: Span | None = None) -> dict[str, str]:
    """The message's headers; with `span` (the publication's), its `traceparent` too."""
    correlation = str(row.headers.get("correlation_id") or "") or row.id
    headers = {
        MSG_ID_HEADER: row.id,
        CORRELATION_HEADER: correlation,
        AGGREGATE_HEADER: row.aggregate_id,
        OUTBOX_SEQ_HEADER: str(row.seq),
    }
    if span is not None:
        inject(headers, trace.set_span_in_context(span))
    return headers


def publish_span(row: OutboxRow, wire_subject: str) -> Span | None:
    """The PRODUCER span of a row recorded inside a trace (None for a row recorded outside any)."""
    parent = context_from(row.headers)
    if parent is None:
        return None
    return tracer().start_span(f"publish {row.subject}", context=parent, kind=PRODUCER,
                               attributes={"messaging.system": "nats", "messaging.destination.name": wire_subject,
                                           "messaging.message.id": row.id})


def waves(rows: list[OutboxRow]) -> list[list[OutboxRow]]:
    """`rows` (in seq order) cut into consecutive waves, each as long as no aggregate repeats in it.
    A wave is sent at once and the next only after all its PubAcks: the stream gets the rows in seq
    order, and a row goes out only once every earlier row of its aggregate is acknowledged, exactly
    as if each were published alone; only rows of different aggregates share a round trip."""
    result: list[list[OutboxRow]] = []
    current: list[OutboxRow] = []
    aggregates: set[str] = set()
    for row in rows:
        if row.aggregate_id in aggregates:
            result.append(current)
            current, aggregates = [], set()
        current.append(row)
        aggregates.add(row.aggregate_id)
    if current:
        result.append(current)
    return result


def encode_payload(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


class OutboxRelay:
    def __init__(self, database_url: str, plumbing: Plumbing, nats_url: str, events: EventSettings, *,
                 name: str = "outbox-relay", on_published: OnPublished | None = None) -> None:
        self._dsn = libpq_dsn(database_url)
        self._plumbing = plumbing
        self._schema = plumbing.schema
        self._select_pending = _SELECT_PENDING.format(schema=plumbing.schema)
        self._mark_published = _MARK_PUBLISHED.format(schema=plumbing.schema)
        self._mark_and_select_pending = _MARK_AND_SELECT_PENDING.format(schema=plumbing.schema)
        self._count_parked = _COUNT_PARKED.format(schema=plumbing.schema)
        self._on_published = on_published
        self._oldest_pending: datetime.datetime | None = None  # of the last read, until its batch is out
        self.parked_dead_letters = 0
        self._next_dead_letter_count = 0.0
        self._unmarked: list[str] = []  # published (PubAck) but published_at not set yet
        self._nats_url = nats_url
        self._events = events
        self._name = name
        self._retry = RetryPolicy(attempts=1, first_delay=0.1, max_delay=events.relay_max_retry_delay)
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._streams_ready = False
        self.is_leader = False
        self.stats = RelayStats()

    # -- the loop -------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        try:
            while not stop.is_set():
                pg = await self._become_leader(stop)
                if pg is None:
                    return
                try:
                    await self._lead(pg, stop)
                except (psycopg.Error, OSError) as error:
                    _log.warning("relay lost its database connection; leadership released", extra={"error": repr(error)})
                except Exception:
                    _log.exception("relay failed unexpectedly; leadership released, starting over")
                    await sleep_or_stop(stop, LOCK_RETRY_SECONDS)
                finally:
                    self._set_leader(False)
                    await _close_pg(pg)
        finally:
            await close_quietly(self._nc)
            self._nc = None

    async def _become_leader(self, stop: asyncio.Event) -> psycopg.AsyncConnection | None:
        """Block until this relay holds the lock (returns its connection) or `stop` is set."""
        pg: psycopg.AsyncConnection | None = None
        failures = 0
        standby_logged = False
        while not stop.is_set():
            try:
                if pg is None or pg.closed:
                    pg = await psycopg.AsyncConnection.connect(
                        self._dsn, autocommit=True, connect_timeout=5, application_name=self._name)
                row = await (await pg.execute("SELECT pg_try_advisory_lock(%s)", (self._plumbing.relay_lock_key,))).fetchone()
                if row is not None and row[0]:
                    self._set_leader(True)
                    return pg
                failures, delay = 0, LOCK_RETRY_SECONDS
                self.stats.standby_tries += 1
                if not standby_logged:
                    _log.info("another relay is the leader; standing by")
                    standby_logged = True
            except (psycopg.Error, OSError) as error:
                failures += 1
                delay = self._retry.delay(failures)
                _log.warning("relay cannot reach the database", extra={"error": repr(error), "retry_in": round(delay, 2)})
                await _close_pg(pg)
                pg = None
            await sleep_or_stop(stop, delay)
        await _close_pg(pg)
        return None

    async def _lead(self, pg: psycopg.AsyncConnection, stop: asyncio.Event) -> None:
        self._unmarked = []
        await pg.execute(f"LISTEN {self._plumbing.notify_channel}")
        _log.info("relay is the leader", extra={"schema": self._schema})
        try:
            await self._publish_until_stopped(pg, stop)
        finally:
            await self._mark_quietly(pg)

    async def _publish_until_stopped(self, pg: psycopg.AsyncConnection, stop: asyncio.Event) -> None:
        failures = 0
        while not stop.is_set():
            await self._count_dead_letters(pg)
            try:
                more = await self._publish_pending(pg, stop)
            except PublishFailed as error:
                failures += 1
                self.stats.failures += 1
                PUBLISH_FAILURES.labels(self._schema).inc()
                await self._mark(pg)  # what went out before the failure
                delay = self._retry.delay(failures)
                _log.warning("publish failed; retrying", extra={"error": str(error), "attempt": failures,
                                                               "retry_in": round(delay, 2)})
                await sleep_or_stop(stop, delay)
                continue
            failures = 0
            if not more:
                await self._wait_for_rows(pg, stop)

    async def _wait_for_rows(self, pg: psycopg.AsyncConnection, stop: asyncio.Event) -> None:
        """Until the first notification, the poll interval, or `stop`, whichever comes first. Rows
        published but not marked yet are marked with the next read if a notification comes within
        MARK_LINGER_SECONDS, else alone."""
        if self._unmarked:
            if await self._notified(pg, stop, MARK_LINGER_SECONDS):
                return
            await self._mark(pg)
        await self._notified(pg, stop, self._events.relay_poll_interval)

    async def _notified(self, pg: psycopg.AsyncConnection, stop: asyncio.Event, timeout: float) -> bool:
        """True if a notification came before `timeout` seconds or `stop`."""
        arrived = False

        async def notified() -> None:
            nonlocal arrived
            async for _ in pg.notifies(timeout=timeout, stop_after=1):
                arrived = True

        waiter, stopper = asyncio.ensure_future(notified()), asyncio.ensure_future(stop.wait())
        done, pending = await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if waiter in done:
            waiter.result()  # a lost connection surfaces here
        return arrived

    async def _mark(self, pg: psycopg.AsyncConnection) -> None:
        if self._unmarked:
            await pg.execute(self._mark_published, (self._unmarked,))
            self._unmarked = []

    async def _mark_quietly(self, pg: psycopg.AsyncConnection) -> None:
        """On the way out: a mark that cannot be made now is made by the next leader's publication
        (a duplicate JetStream drops)."""
        try:
            await self._mark(pg)
        except (psycopg.Error, OSError) as error:
            _log.debug("could not mark the last published rows", extra={"error": repr(error)})

    # -- one pass -----------------------------------------------------------------------------------
    async def _publish_pending(self, pg: psycopg.AsyncConnection, stop: asyncio.Event) -> bool:
        """Publish batches until none is full; True if stopped early with rows likely left."""
        batch = self._events.relay_batch
        while not stop.is_set():
            rows = await self._pending(pg, batch)
            if not rows:
                return False
            acked: list[str] = []
            try:
                js = await self._jetstream()
                for wave in waves(rows):
                    await self._publish_wave(js, wave, acked)
                fault_point("relay_after_publish")
            except (nats.errors.Error, OSError, TimeoutError) as error:
                if isinstance(error, (nats.errors.NoRespondersError, nats.js.errors.NoStreamResponseError)):
                    self._streams_ready = False  # a fresh server without the stream: declare it again
                raise PublishFailed(f"{type(error).__name__}: {error}") from error
            finally:
                self._unmarked += acked  # marked by the next read, or after MARK_LINGER_SECONDS
            if len(rows) < batch:
                self._oldest_pending = None
                return False
        return True

    async def _pending(self, pg: psycopg.AsyncConnection, limit: int) -> list[OutboxRow]:
        """The next unpublished rows, oldest first; the rows published since the last mark are
        marked by the same statement."""
        if self._unmarked:
            cursor = await pg.execute(self._mark_and_select_pending, (self._unmarked, self._unmarked, limit))
            self._unmarked = []
        else:
            cursor = await pg.execute(self._select_pending, (limit,))
        rows = [OutboxRow(*row) for row in await cursor.fetchall()]
        self._oldest_pending = rows[0].created_at if rows else None
        return rows

    async def _count_dead_letters(self, pg: psycopg.AsyncConnection) -> None:
        """Every DEAD_LETTER_COUNT_SECONDS, on the leader's connection: the parked dead letters."""
        if time.monotonic() < self._next_dead_letter_count:
            return
        row = await (await pg.execute(self._count_parked)).fetchone()
        self.parked_dead_letters = int(row[0]) if row is not None else 0
        self._next_dead_letter_count = time.monotonic() + DEAD_LETTER_COUNT_SECONDS

    def lag_seconds(self) -> float:
        """How long the oldest row read and not yet published has waited (0: none)."""
        oldest = self._oldest_pending
        return 0.0 if oldest is None else max(0.0, time.time() - oldest.timestamp())

    async def _publish_wave(self, js: JetStreamContext, wave: list[OutboxRow], acked: list[str]) -> None:
        """Send every row of `wave` (no two of one aggregate), then wait for their PubAcks: one round
        trip for the lot. The acked ones are added to `acked`, even when another failed; then the
        first failure is raised."""
        sent: list[tuple[OutboxRow, asyncio.Future[PubAck]]] = []
        spans: list[Span | None] = []
        failure: BaseException | None = None
        for row in wave:
            subject = self._events.wire_subject(row.subject)
            span = publish_span(row, subject)
            try:
                future = await js.publish_async(subject, encode_payload(row.payload), headers=event_headers(row, span))
            except (nats.errors.Error, OSError, TimeoutError) as error:  # refused before sending (too large, closed)
                failure = error
                _end(span, error)
                break  # nothing is sent past it
            sent.append((row, future))
            spans.append(span)
        timeout = self._events.relay_publish_timeout
        answers = await asyncio.gather(*(asyncio.wait_for(future, timeout) for _, future in sent),
                                       return_exceptions=True)
        for (row, _), span, answer in zip(sent, spans, answers, strict=True):
            if isinstance(answer, BaseException):
                failure = failure or answer
                _end(span, answer)
            else:
                self._count(answer, row)
                acked.append(row.id)
                _end(span, None)
        if failure is not None:
            raise failure

    def _count(self, ack: PubAck, row: OutboxRow) -> None:
        if ack.duplicate:
            self.stats.duplicates += 1
            PUBLISHED.labels(self._schema, "duplicate").inc()
        else:
            self.stats.published += 1
            PUBLISHED.labels(self._schema, "new").inc()
            PUBLISH_LAG.observe(max(0.0, time.time() - row.created_at.timestamp()))
            EVENTS_PUBLISHED.labels(self._schema, row.subject).inc()
            if self._on_published is not None and isinstance(row.payload, Mapping):
                self._on_published(row.subject, row.payload)

    async def _jetstream(self) -> JetStreamContext:
        if self._nc is None or self._nc.is_closed:
            self._nc = await connect(self._nats_url, self._name, on_reconnect=self._forget_streams,
                                     first_connect_timeout=max(2.0, self._events.relay_publish_timeout))
            self._js = self._nc.jetstream(timeout=self._events.relay_publish_timeout)
            self._streams_ready = False
        assert self._js is not None
        if not self._streams_ready:
            await ensure_streams(self._js, self._events)
            self._streams_ready = True
        return self._js

    def _forget_streams(self) -> None:
        self._streams_ready = False

    def _set_leader(self, leader: bool) -> None:
        if leader and not self.is_leader:
            self.stats.terms_as_leader += 1
        self.is_leader = leader
        LEADER.labels(self._schema).set(1 if leader else 0)
        if leader:
            self._next_dead_letter_count = 0.0
            self._oldest_pending = None
            _LEADING[self._schema] = self
            OUTBOX_LAG.labels(self._schema).set_function(functools.partial(_leader_reading, self._schema, "lag"))
            DEAD_LETTERS_PARKED.labels(self._schema).set_function(
                functools.partial(_leader_reading, self._schema, "parked"))
        elif _LEADING.get(self._schema) is self:
            del _LEADING[self._schema]


def _leader_reading(schema: str, what: str) -> float:
    """A gauge's value at scrape time: the leading relay's reading, 0 while this process leads none."""
    relay = _LEADING.get(schema)
    if relay is None:
        return 0.0
    return relay.lag_seconds() if what == "lag" else float(relay.parked_dead_letters)


def _end(span: Span | None, error: BaseException | None) -> None:
    if span is not None:
        if error is not None:
            mark_error(span, error)
        span.end()


async def _close_pg(pg: psycopg.AsyncConnection | None) -> None:
    if pg is not None and not pg.closed:
        try:
            await pg.close()  # ends the session: PostgreSQL releases the advisory lock
        except Exception as error:
            _log.debug("closing the relay connection failed", extra={"error": repr(error)})


def relay_worker(settings: Settings, service: str, plumbing: Plumbing, *,
                 on_published: OnPublished | None = None) -> Worker:
    """The relay of `service`'s outbox, as a worker of the service's process."""
    relay = OutboxRelay(settings.service_database_url(service), plumbing, settings.nats_url,
                        EventSettings.from_settings(settings), name=f"{service}-outbox-relay",
                        on_published=on_published)
    return Worker(f"{service}-outbox-relay", relay.run)


async def _run_alone(service: str) -> None:
    settings = process_settings()
    worker = relay_worker(settings, service, plumbing_tables(MetaData(), SCHEMAS[service])).start()
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopped.set)
    await stopped.wait()
    await worker.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m common.outbox_relay",
                                     description="Relay one service's outbox to NATS until SIGTERM.")
    parser.add_argument("service", choices=SERVICES)
    args = parser.parse_args(argv)
    settings = process_settings()
    configure_logging(f"{args.service}-outbox-relay", settings.log_level)
    configure_tracing(f"{args.service}-outbox-relay", settings)
    warn_about_fault_settings()
    try:
        asyncio.run(_run_alone(args.service))
    finally:
        shutdown_tracing()
    return 0


if __name__ == "__main__":
    sys.exit(main())
