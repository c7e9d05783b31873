"""The tables every service has in its own schema: the outbox, the audit log, the dead letters.

Each service owns a PostgreSQL schema (docs/ARCHITECTURE.md); these three tables have the same
shape in each, so the outbox relay, the unit of work and the event consumers are written once
and told which schema they serve.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import struct

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    TextClause,
    bindparam,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

Stamp = DateTime(timezone=True)
Id = UUID(as_uuid=False)


@dataclasses.dataclass(frozen=True)
class Plumbing:
    schema: str
    outbox: Table
    audit_log: Table
    dead_letters: Table

    # Built once per schema: a statement built per call costs SQLAlchemy a cache-key walk each time.
    @functools.cached_property
    def write_outbox_and_audit(self) -> TextClause:
        """The outbox rows (`:events`) and the audit rows (`:audits`) of a commit, as one statement
        (common/uow.py): each a JSON array of row objects, inserted in array order."""
        return text(f"WITH audit AS ({_audit_insert(self.schema)}) {_outbox_insert(self.schema)}").bindparams(
            bindparam("events", type_=JSONB), bindparam("audits", type_=JSONB))

    @functools.cached_property
    def write_outbox(self) -> TextClause:
        return text(_outbox_insert(self.schema)).bindparams(bindparam("events", type_=JSONB))

    @functools.cached_property
    def write_audit(self) -> TextClause:
        return text(_audit_insert(self.schema)).bindparams(bindparam("audits", type_=JSONB))

    @property
    def notify_channel(self) -> str:
        """NOTIFY'd after every insert into this schema's outbox (the relay LISTENs)."""
        return f"outbox_{self.schema}"

    @property
    def relay_lock_key(self) -> int:
        """The advisory lock the leading relay of this schema holds (one leader per schema)."""
        return struct.unpack(">q", hashlib.sha256(f"outbox-relay:{self.schema}".encode()).digest()[:8])[0]


# Rows in array order (ORDINALITY): the outbox `seq` and the audit ids follow the order recorded.
def _outbox_insert(schema: str) -> str:
    return (f'INSERT INTO "{schema}".outbox (id, aggregate_id, subject, payload, headers) '
            "SELECT id, aggregate_id, subject, payload, headers FROM ROWS FROM (jsonb_to_recordset(:events) "
            "AS (id uuid, aggregate_id text, subject text, payload jsonb, headers jsonb)) WITH ORDINALITY "
            "AS e(id, aggregate_id, subject, payload, headers, n) ORDER BY n")


def _audit_insert(schema: str) -> str:
    # COALESCE: an absent before/after is stored as JSON null, as a JSONB column stores Python None
    return (f'INSERT INTO "{schema}".audit_log (actor, correlation_id, entity_type, entity_id, action, before, after, '
            "flagged) SELECT actor, correlation_id, entity_type, entity_id, action, COALESCE(before, 'null'), "
            "COALESCE(after, 'null'), flagged FROM ROWS FROM (jsonb_to_recordset(:audits) AS (actor text, "
            "correlation_id text, entity_type text, entity_id text, action text, before jsonb, after jsonb, "
            "flagged boolean)) WITH ORDINALITY AS a(actor, correlation_id, entity_type, entity_id, action, before, "
            "after, flagged, n) ORDER BY n")


def plumbing_tables(metadata: MetaData, schema: str) -> Plumbing:
    outbox = Table(
        "outbox", metadata,
        Column("id", Id, primary_key=True),
        Column("seq", BigInteger),
        Column("aggregate_id", Text, nullable=False),
        Column("subject", Text, nullable=False),
        Column("payload", JSONB, nullable=False),
        Column("headers", JSONB, nullable=False),
        Column("created_at", Stamp),
        Column("published_at", Stamp),
        schema=schema,
    )
    audit_log = Table(
        "audit_log", metadata,
        Column("id", BigInteger, primary_key=True),
        Column("occurred_at", Stamp),
        Column("actor", Text, nullable=False),
        Column("correlation_id", Text, nullable=False),
        Column("entity_type", Text, nullable=False),
        Column("entity_id", Text, nullable=False),
        Column("action", Text, nullable=False),
        Column("before", JSONB),
        Column("after", JSONB),
        Column("flagged", Boolean, nullable=False),
        schema=schema,
    )
    dead_letters = Table(
        "dead_letters", metadata,
        Column("dead_letter_id", Id, primary_key=True),
        Column("stream", Text, nullable=False),
        Column("consumer", Text, nullable=False),
        Column("stream_seq", BigInteger, nullable=False),
        Column("subject", Text, nullable=False),
        Column("payload", LargeBinary, nullable=False),
        Column("deliveries", Integer, nullable=False),
        Column("error", Text, nullable=False),
        Column("status", Text, nullable=False),
        Column("created_at", Stamp),
        Column("replayed_at", Stamp),
        schema=schema,
    )
    return Plumbing(schema, outbox, audit_log, dead_letters)
