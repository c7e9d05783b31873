"""SQLAlchemy Core descriptions of the tables created by migrations/ (the DDL there is the truth;
tests/integration/test_schema.py checks these agree with it)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger, Boolean, Column, DateTime, Integer, LargeBinary, MetaData, Numeric, String, Table, Text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

metadata = MetaData()

Money = Numeric(12, 2, asdecimal=True)
Rate = Numeric(18, 8, asdecimal=True)
Stamp = DateTime(timezone=True)
Id = UUID(as_uuid=False)

internships = Table(
    "internships", metadata,
    Column("internship_id", Id, primary_key=True),
    Column("title", Text, nullable=False),
    Column("description", Text, nullable=False),
    Column("created_at", Stamp),
)

plans = Table(
    "plans", metadata,
    Column("plan_id", Id, primary_key=True),
    Column("internship_id", Id, nullable=False),
    Column("period_value", Integer, nullable=False),
    Column("period_unit", Text, nullable=False),
    Column("price", Money, nullable=False),
    Column("currency", String(3), nullable=False),
)

sales = Table(
    "sales", metadata,
    Column("sale_slug", Text, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("value", Money, nullable=False),
    Column("internship_ids", ARRAY(Id), nullable=False),
    Column("starts_at", Stamp),
    Column("ends_at", Stamp),
    Column("created_at", Stamp),
)

exchange_rates = Table(
    "exchange_rates", metadata,
    Column("currency", String(3), primary_key=True),
    Column("rate", Rate, nullable=False),
    Column("updated_at", Stamp, nullable=False),
)

exchange_rate_changes = Table(
    "exchange_rate_changes", metadata,
    Column("id", BigInteger, primary_key=True),
    Column("currency", String(3), nullable=False),
    Column("old_rate", Rate),
    Column("new_rate", Rate, nullable=False),
    Column("changed_by", Text, nullable=False),
    Column("changed_at", Stamp),
)

coupons = Table(
    "coupons", metadata,
    Column("code", Text, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("value", Money, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("min_subtotal", Money, nullable=False),
    Column("starts_at", Stamp),
    Column("ends_at", Stamp),
    Column("max_redemptions", Integer, nullable=False),
    Column("max_redemptions_per_user", Integer, nullable=False),
    Column("internship_ids", ARRAY(Id), nullable=False),
    Column("redeemed_count", Integer, nullable=False),
    Column("created_at", Stamp),
    Column("listed", Boolean, nullable=False),
)

coupon_redemptions = Table(
    "coupon_redemptions", metadata,
    Column("redemption_id", Id, primary_key=True),
    Column("code", Text, nullable=False),
    Column("user_id", Id, nullable=False),
    Column("order_token", Id, nullable=False),
    Column("status", Text, nullable=False),
    Column("created_at", Stamp),
    Column("released_at", Stamp),
)

carts = Table(
    "carts", metadata,
    Column("token", Id, primary_key=True),
    Column("user_id", Id),
    Column("status", Text, nullable=False),
    Column("items", JSONB, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("sale_slug", Text),
    Column("subtotal", Money, nullable=False),
    Column("discount_code", Text),
    Column("discount_amount", Money, nullable=False),
    Column("tax_rate", Numeric(5, 2), nullable=False),
    Column("tax_amount", Money, nullable=False),
    Column("total", Money, nullable=False),
    Column("expires_at", Stamp, nullable=False),
    Column("device_id", String(255)),
    Column("analytics_data", JSONB, nullable=False),
    Column("version", Integer, nullable=False),
    Column("created_at", Stamp, nullable=False),
    Column("updated_at", Stamp, nullable=False),
)

orders = Table(
    "orders", metadata,
    Column("order_token", Id, primary_key=True),
    Column("cart_token", Id, nullable=False),
    Column("user_id", Id, nullable=False),
    Column("status", Text, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("items", JSONB, nullable=False),
    Column("subtotal", Money, nullable=False),
    Column("discount_code", Text),
    Column("discount_amount", Money, nullable=False),
    Column("taxes", JSONB, nullable=False),
    Column("tax_amount", Money, nullable=False),
    Column("total", Money, nullable=False),
    Column("exchange_rate", Rate, nullable=False),
    Column("billing", JSONB, nullable=False),
    Column("payment_method", Text),
    Column("payment_token", Id),
    Column("enrollment_id", Id),
    Column("expires_at", Stamp, nullable=False),
    Column("created_at", Stamp),
    Column("updated_at", Stamp),
    Column("return_url", Text, nullable=False),
    Column("cancel_url", Text, nullable=False),
)

idempotency_keys = Table(
    "idempotency_keys", metadata,
    Column("user_id", Id, primary_key=True),
    Column("key", Text, primary_key=True),
    Column("request_method", Text, nullable=False),
    Column("request_hash", Text, nullable=False),
    Column("recovery_point", Text, nullable=False),
    Column("locked_at", Stamp),
    Column("response_code", Integer),
    Column("response_body", LargeBinary),
    Column("order_token", Id),
    Column("created_at", Stamp),
    Column("last_used_at", Stamp),
)

payment_tokens = Table(
    "payment_tokens", metadata,
    Column("token", Id, primary_key=True),
    Column("order_token", Id, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("gateway", String(50), nullable=False),
    Column("gateway_order_id", String(255)),
    Column("gateway_payment_id", String(255)),
    Column("checkout_url", Text),
    Column("amount", Money, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", Text, nullable=False),
    Column("expires_at", Stamp, nullable=False),
    Column("created_at", Stamp),
    Column("updated_at", Stamp),
)

webhook_events = Table(
    "webhook_events", metadata,
    Column("gateway", String(50), primary_key=True),
    Column("event_id", Text, primary_key=True),
    Column("event_type", Text, nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("status", Text, nullable=False),
    Column("error", Text),
    Column("received_at", Stamp),
    Column("processed_at", Stamp),
)

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
)

enrollments = Table(
    "enrollments", metadata,
    Column("enrollment_id", Id, primary_key=True),
    Column("order_token", Id, nullable=False),
    Column("user_id", Id, nullable=False),
    Column("internship_id", Id, nullable=False),
    Column("plan_id", Id, nullable=False),
    Column("status", Text, nullable=False),
    Column("starts_at", Stamp, nullable=False),
    Column("ends_at", Stamp, nullable=False),
    Column("created_at", Stamp),
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
)
