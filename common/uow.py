"""The unit of work: one transaction on one pooled connection, and what it must tell others.

A use case opens one, reads and changes its service's rows through `uow.conn`, records the events
others must hear of (`publish`) and the audit rows of its changes (`audit`), and commits. The
events and audit rows are written in that same transaction, at commit, by one statement (both
INSERTs, their rows from JSON arrays, in the order recorded): an event exists exactly when its
change does, and a rolled-back change leaves neither.
Leaving the block without `commit()` rolls everything back. Service-layer tests use
tests/support/fake_uow.py, which keeps the same record in memory.

A use case that only reads opens `reading(uow_factory)` instead: no transaction at all, each
statement on its own (what a READ COMMITTED transaction's statements see anyway), so no BEGIN and
no ROLLBACK go to the server. A ROLLBACK is not free: besides its round trip, psycopg forgets
the connection's prepared statements at every one (and sends DEALLOCATE ALL), so a use case that
reads under a lock and changes nothing should `commit()` rather than fall out of the block.

A change that is one statement and that no event or audit row has to accompany (an upsert, a
compare-and-set) opens `one_statement(uow_factory)`: the same autocommit connection, so the
statement is its own transaction and neither BEGIN nor COMMIT costs a round trip.

    async with uow_factory() as uow:
        order = await repository.get(uow.conn, token, for_update=True)
        ...
        uow.publish("checkout.order.paid", order.order_token, event)
        uow.audit(actor=..., entity_type="order", entity_id=..., action="status:paid", before=..., after=...)
        await uow.commit()

Each unit of work is one span (`db.<schema>`, common/tracing.py) from taking the connection to
giving it back, and each recorded event keeps the context it was recorded in: its outbox row's
`headers` carry `traceparent`, which the relay publishes with it.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import uuid
from collections.abc import Callable, Mapping
from decimal import Decimal
from types import TracebackType
from typing import Any

import psycopg
from google.protobuf import json_format
from google.protobuf.message import Message
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from common.plumbing import Plumbing
from common.request_context import correlation_id
from common.tracing import CLIENT, Scope, current_traceparent

STREAM_SUBJECT_PREFIX = "checkout."
_PIPELINE = psycopg.Pipeline.is_supported()  # libpq 14+ (psycopg-binary ships one)


@dataclasses.dataclass(frozen=True)
class Event:
    id: str
    subject: str
    aggregate_id: str
    payload: dict[str, Any]
    traceparent: str = ""  # the span it was recorded in (common/tracing.py)


@dataclasses.dataclass(frozen=True)
class AuditEntry:
    actor: str
    entity_type: str
    entity_id: str
    action: str
    before: Any
    after: Any
    flagged: bool = False


def event_payload(message: Message | Mapping[str, Any]) -> dict[str, Any]:
    """An event's JSON: proto field names, zero values printed (docs/EVENTS.md)."""
    if isinstance(message, Message):
        return json_format.MessageToDict(message, preserving_proto_field_name=True,
                                         always_print_fields_with_no_presence=True)
    return jsonable(dict(message))


def new_event(subject: str, aggregate_id: str, payload: Message | Mapping[str, Any]) -> Event:
    if not subject.startswith(STREAM_SUBJECT_PREFIX):
        raise ValueError(f"event subject must start with {STREAM_SUBJECT_PREFIX!r}: {subject}")
    return Event(str(uuid.uuid4()), subject, aggregate_id, event_payload(payload), current_traceparent())


class Recorder:
    """What a transaction must tell others: events and audit rows, written at commit."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.audits: list[AuditEntry] = []

    def publish(self, subject: str, aggregate_id: str, payload: Message | Mapping[str, Any]) -> Event:
        """`subject` like "checkout.order.paid"; `aggregate_id` keeps one aggregate's events in order."""
        event = new_event(subject, aggregate_id, payload)
        self.events.append(event)
        return event

    def audit(self, *, actor: str, entity_type: str, entity_id: str, action: str, before: Mapping[str, Any] | None,
              after: Mapping[str, Any] | None, flagged: bool = False) -> None:
        """`before`/`after` may hold Decimals, datetimes, UUIDs, sets and dataclasses; stored as JSON."""
        self.audits.append(AuditEntry(actor, entity_type, entity_id, action,
                                      None if before is None else jsonable(before),
                                      None if after is None else jsonable(after), flagged))


class UnitOfWork(Recorder):
    def __init__(self, engine: AsyncEngine, plumbing: Plumbing, *, read_only: bool = False) -> None:
        super().__init__()
        self._engine = engine
        self._plumbing = plumbing
        self._read_only = read_only
        self._conn: AsyncConnection | None = None
        self._scope: Scope | None = None
        self.committed = False

    @property
    def conn(self) -> AsyncConnection:
        if self._conn is None:
            raise RuntimeError("the unit of work is not open (use `async with`)")
        return self._conn

    async def __aenter__(self) -> UnitOfWork:
        self._scope = Scope(f"db.{self._plumbing.schema}", CLIENT,
                            {"db.system": "postgresql", "db.read_only": self._read_only})
        try:
            self._conn = await self._engine.connect()
            if self._read_only:
                await self._conn.execution_options(isolation_level="AUTOCOMMIT")
            else:
                await self._conn.begin()
        except BaseException as error:
            self._leave(error)
            raise
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        trace: TracebackType | None) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            self._leave(error)
            return
        try:
            if conn.in_transaction():
                await conn.rollback()
        finally:
            await conn.close()
            self._leave(error)

    def _leave(self, error: BaseException | None) -> None:
        scope, self._scope = self._scope, None
        if scope is not None:
            if scope.span.is_recording():
                scope.span.set_attribute("db.committed", self.committed)
            scope.leave(error)

    async def flush(self) -> None:
        """Write the recorded events and audit rows now, in one statement (commit does it too)."""
        if not (self.events or self.audits):
            return
        await self._write_recorded()

    async def _write_recorded(self) -> None:
        if self._read_only:
            raise RuntimeError("a read-only (autocommit) unit of work records no events and no audit rows")
        cid = correlation_id()
        events = [{"id": e.id, "aggregate_id": e.aggregate_id, "subject": e.subject, "payload": e.payload,
                   "headers": {"correlation_id": cid, "traceparent": e.traceparent} if e.traceparent
                   else {"correlation_id": cid}} for e in self.events]
        audits = [{"actor": a.actor, "correlation_id": cid, "entity_type": a.entity_type, "entity_id": a.entity_id,
                   "action": a.action, "before": a.before, "after": a.after, "flagged": a.flagged}
                  for a in self.audits]
        plumbing = self._plumbing
        if events and audits:
            await self.conn.execute(plumbing.write_outbox_and_audit, {"events": events, "audits": audits})
        elif events:
            await self.conn.execute(plumbing.write_outbox, {"events": events})
        else:
            await self.conn.execute(plumbing.write_audit, {"audits": audits})
        self.events, self.audits = [], []

    async def commit(self) -> None:
        """Write the recorded events and audit rows and COMMIT: with rows to write, both go to the
        server together (psycopg's pipeline mode: one round trip instead of two)."""
        if (self.events or self.audits) and _PIPELINE:
            driver = (await self.conn.get_raw_connection()).driver_connection
            assert driver is not None
            async with driver.pipeline():
                await self._write_recorded()  # queued: nothing of its result is needed
                await driver.commit()  # queued with it, then both are sent and answered (an error raises here)
        else:
            await self.flush()
        await self.conn.commit()  # SQLAlchemy's side (the server has committed already, if it had to)
        self.committed = True


UnitOfWorkFactory = Callable[[], UnitOfWork]


class _Factory:
    def __init__(self, engine: AsyncEngine, plumbing: Plumbing) -> None:
        self._engine = engine
        self._plumbing = plumbing

    def __call__(self) -> UnitOfWork:
        return UnitOfWork(self._engine, self._plumbing)

    def read_only(self) -> UnitOfWork:
        return UnitOfWork(self._engine, self._plumbing, read_only=True)


def uow_factory(engine: AsyncEngine, plumbing: Plumbing) -> UnitOfWorkFactory:
    return _Factory(engine, plumbing)


def reading(factory: UnitOfWorkFactory) -> UnitOfWork:
    """A unit of work for a use case that only reads (no transaction; see above), from a factory of
    `uow_factory`; any other factory (a test's fake) gives its usual one."""
    read_only = getattr(factory, "read_only", None)
    return read_only() if read_only is not None else factory()


def one_statement(factory: UnitOfWorkFactory) -> UnitOfWork:
    """A unit of work for a change made by a single statement that records no event and no audit
    row through the unit of work (see above; the statement may write rows of its own, atomically
    with its change): autocommit, like `reading`, which it is underneath; `commit()` sends nothing."""
    return reading(factory)


def jsonable(value: Any) -> Any:
    """Plain JSON values; Decimals become strings so no amount passes through a float."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime.datetime):
        return value.astimezone(datetime.UTC).isoformat()
    if isinstance(value, (uuid.UUID, datetime.date)):
        return str(value)
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if isinstance(value, Message):
        return event_payload(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable(dataclasses.asdict(value))
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted(jsonable(item) for item in value)
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    raise TypeError(f"cannot store {type(value).__name__} as JSON")
