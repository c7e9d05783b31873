"""DDL of the tables every service schema has (common/plumbing.py describes them to SQLAlchemy):
the transactional outbox with its NOTIFY trigger, the append-only audit log, the dead letters.

Each function is frozen once a migration uses it: a change is a new function (plumbing_v2) used
by a new migration, never an edit, so an old migration always builds what it built.
"""

from __future__ import annotations


def plumbing_v1(schema: str) -> str:
    """Run with search_path = `schema` (migrations/env.py sets it)."""
    return f"""
CREATE TABLE outbox (
    id           uuid PRIMARY KEY,
    seq          bigserial UNIQUE,
    aggregate_id text NOT NULL,
    subject      text NOT NULL,
    payload      jsonb NOT NULL,
    headers      jsonb NOT NULL DEFAULT '{{}}',
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX idx_outbox_unpublished ON outbox (seq) WHERE published_at IS NULL;

-- Wake the relay at commit (never for a rolled-back insert); the table stays the truth.
CREATE FUNCTION outbox_notify_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('outbox_{schema}', '');
    RETURN NULL;
END;
$$;
CREATE TRIGGER outbox_notify_inserted AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify_inserted();

CREATE TABLE audit_log (
    id             bigserial PRIMARY KEY,
    occurred_at    timestamptz NOT NULL DEFAULT now(),
    actor          text NOT NULL,
    correlation_id text NOT NULL DEFAULT '',
    entity_type    text NOT NULL,
    entity_id      text NOT NULL,
    action         text NOT NULL,
    before         jsonb,
    after          jsonb,
    flagged        boolean NOT NULL DEFAULT false
);
CREATE INDEX idx_audit_log_entity ON audit_log (entity_type, entity_id);
CREATE INDEX idx_audit_log_flagged ON audit_log (occurred_at) WHERE flagged;
CREATE FUNCTION audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP;
END;
$$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only();

-- Events a consumer of this service gave up on (common/consumer.py), to replay by hand.
CREATE TABLE dead_letters (
    dead_letter_id uuid PRIMARY KEY,
    stream         text NOT NULL,
    consumer       text NOT NULL,
    stream_seq     bigint NOT NULL,
    subject        text NOT NULL,
    payload        bytea NOT NULL,
    deliveries     integer NOT NULL,
    error          text NOT NULL DEFAULT '',
    status         text NOT NULL DEFAULT 'parked' CHECK (status IN ('parked', 'replayed')),
    created_at     timestamptz NOT NULL DEFAULT now(),
    replayed_at    timestamptz,
    UNIQUE (stream, consumer, stream_seq)
);
"""


PLUMBING_TABLES = ("dead_letters", "audit_log", "outbox")
PLUMBING_FUNCTIONS = ("audit_log_is_append_only()", "outbox_notify_inserted()")


def drop_plumbing_v1() -> str:
    tables = "".join(f"DROP TABLE IF EXISTS {table} CASCADE;\n" for table in PLUMBING_TABLES)
    functions = "".join(f"DROP FUNCTION IF EXISTS {function};\n" for function in PLUMBING_FUNCTIONS)
    return tables + functions
