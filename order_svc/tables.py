"""order_svc's tables in schema `ordering` (migrations/ordering/), and its outbox, audit log and
dead letters (common/plumbing.py)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Integer, LargeBinary, MetaData, Numeric, SmallInteger, Table, Text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from common.plumbing import plumbing_tables

SCHEMA = "ordering"
Stamp = DateTime(timezone=True)
Token = UUID(as_uuid=False)
Money = Numeric(12, 2)

metadata = MetaData()

orders = Table(
    "orders", metadata,
    Column("order_token", Token, primary_key=True),
    Column("cart_token", Token, nullable=False),
    Column("user_id", Token, nullable=False),
    Column("status", Text, nullable=False),
    Column("currency", Text, nullable=False),
    Column("items", JSONB, nullable=False),  # the snapshot's lines, as checkout.internal.v1.OrderLine JSON
    Column("subtotal", Money, nullable=False),
    Column("discount_code", Text),
    Column("discount_amount", Money, nullable=False),
    Column("taxes", JSONB, nullable=False),
    Column("tax_amount", Money, nullable=False),
    Column("total", Money, nullable=False),
    Column("exchange_rate", Numeric(18, 8), nullable=False),
    Column("billing", JSONB, nullable=False),
    Column("payment_method", Text),
    Column("payment_token", Token),
    Column("payment_attempt", Integer, nullable=False),
    Column("payment", JSONB),  # the latest attempt's session as payment_svc last told us
    Column("enrollment_ids", ARRAY(Token), nullable=False),
    Column("return_url", Text, nullable=False),
    Column("cancel_url", Text, nullable=False),
    Column("expires_at", Stamp, nullable=False),
    Column("created_at", Stamp, nullable=False),
    Column("updated_at", Stamp, nullable=False),
    Column("order_number", BigInteger, nullable=False),  # next_order_number(order_year): counted per year
    Column("order_year", SmallInteger, nullable=False),  # the year placed, in India (domain.invoices.order_year)
    Column("refunded_amount", Money, nullable=False),  # the sum of its processed refunds (payment_svc's events)
    schema=SCHEMA,
)

order_placements = Table(
    "order_placements", metadata,
    Column("order_token", Token, primary_key=True),
    Column("cart_token", Token, nullable=False),
    Column("user_id", Token, nullable=False),
    Column("state", Text, nullable=False),
    Column("resolved_order_token", Token),
    Column("created_at", Stamp, nullable=False),
    Column("updated_at", Stamp, nullable=False),
    schema=SCHEMA,
)

idempotency_keys = Table(
    "idempotency_keys", metadata,
    Column("user_id", Token, primary_key=True),
    Column("key", Text, primary_key=True),
    Column("request_method", Text, nullable=False),
    Column("request_hash", Text, nullable=False),
    Column("recovery_point", Text, nullable=False),
    Column("locked_at", Stamp),
    Column("response_code", Integer),
    Column("response_body", LargeBinary),
    Column("order_token", Token),
    Column("created_at", Stamp, nullable=False),
    Column("last_used_at", Stamp, nullable=False),
    schema=SCHEMA,
)

# GST tax documents (migrations/ordering/versions/0003): gap-free series per financial year
document_series = Table(
    "document_series", metadata,
    Column("series", Text, primary_key=True),
    Column("last_number", Integer, nullable=False),
    schema=SCHEMA,
)

tax_documents = Table(
    "tax_documents", metadata,
    Column("series", Text, primary_key=True),
    Column("sequence", Integer, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("order_token", Token, nullable=False),
    Column("refund_id", Text, nullable=False),
    Column("amount", Money, nullable=False),
    Column("issued_at", Stamp, nullable=False),
    Column("details", JSONB, nullable=False),
    schema=SCHEMA,
)

plumbing = plumbing_tables(metadata, SCHEMA)
