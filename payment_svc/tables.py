"""payment_svc's tables, all in its own schema `payment` (migrations/payment/versions): the payment
sessions, the webhook inbox, the refunds, and the plumbing every schema has (outbox, audit log, dead letters).
payment_svc reads no other schema; its role may not (tests/integration/payment/test_payment_role.py)."""

from __future__ import annotations

from sqlalchemy import CHAR, Column, DateTime, Integer, LargeBinary, MetaData, Numeric, String, Table, Text
from sqlalchemy.dialects.postgresql import JSONB, UUID

from common.plumbing import plumbing_tables
from common.settings import SCHEMAS

SCHEMA = SCHEMAS["payment"]
Stamp = DateTime(timezone=True)
Id = UUID(as_uuid=False)

metadata = MetaData()

payment_sessions = Table(
    "payment_sessions", metadata,
    Column("token", Id, primary_key=True),
    Column("order_token", Id, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("user_id", Id, nullable=False),
    Column("gateway", String(50), nullable=False),
    Column("gateway_order_id", String(255)),
    Column("gateway_payment_id", String(255)),
    Column("checkout_url", Text),
    Column("payment_method", Text),
    Column("amount", Numeric(12, 2), nullable=False),
    Column("currency", CHAR(3), nullable=False),
    Column("status", Text, nullable=False),
    Column("expires_at", Stamp, nullable=False),
    Column("order_expires_at", Stamp, nullable=False),
    Column("created_at", Stamp, nullable=False),
    Column("updated_at", Stamp, nullable=False),
    Column("leased_until", Stamp),  # the lease of the one call talking to a gateway about it
    Column("next_check_at", Stamp),  # the reconciler's next look-up (None: created_at + PAYMENT_RECONCILE_AFTER)
    Column("reconcile_checks", Integer, nullable=False, server_default="0"),
    Column("trace_context", Text),  # traceparent of the request that opened it (common/tracing.py)
    schema=SCHEMA,
)

webhook_events = Table(
    "webhook_events", metadata,
    Column("gateway", String(50), primary_key=True),
    Column("event_id", Text, primary_key=True),
    Column("event_type", Text, nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("status", Text, nullable=False),
    Column("error", Text),
    Column("received_at", Stamp, nullable=False),
    Column("processed_at", Stamp),
    Column("subject", Text),  # Razorpay "<payment id>:<event type>": unique per gateway once applied
    schema=SCHEMA,
)

refunds = Table(
    "refunds", metadata,
    Column("refund_id", Id, primary_key=True),
    Column("order_token", Id, nullable=False),
    Column("payment_token", Id, nullable=False),
    Column("gateway", String(50), nullable=False),
    Column("gateway_payment_id", String(255), nullable=False),
    Column("gateway_refund_id", String(255)),
    Column("amount", Numeric(12, 2), nullable=False),
    Column("currency", CHAR(3), nullable=False),
    Column("status", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("origin", Text, nullable=False),
    Column("requested_by", Text, nullable=False),
    Column("idempotency_key", Text),
    Column("request_hash", Text),
    Column("response", JSONB),
    Column("failure_reason", Text),
    Column("next_check_at", Stamp),
    Column("created_at", Stamp, nullable=False),
    Column("updated_at", Stamp, nullable=False),
    schema=SCHEMA,
)

PLUMBING = plumbing_tables(metadata, SCHEMA)
