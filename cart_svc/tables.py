"""SQLAlchemy Core descriptions of schema `cart` (migrations/cart/ holds the DDL, which is the truth;
tests/integration/cart/test_cart_tables.py checks these agree with it)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, DateTime, Integer, MetaData, Numeric, String, Table, Text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

from common.plumbing import plumbing_tables

SCHEMA = "cart"

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
    schema=SCHEMA,
)

plans = Table(
    "plans", metadata,
    Column("plan_id", Id, primary_key=True),
    Column("internship_id", Id, nullable=False),
    Column("period_value", Integer, nullable=False),
    Column("period_unit", Text, nullable=False),
    Column("price", Money, nullable=False),
    Column("currency", String(3), nullable=False),
    schema=SCHEMA,
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
    schema=SCHEMA,
)

exchange_rates = Table(
    "exchange_rates", metadata,
    Column("currency", String(3), primary_key=True),
    Column("rate", Rate, nullable=False),
    Column("updated_at", Stamp, nullable=False),
    schema=SCHEMA,
)

exchange_rate_changes = Table(
    "exchange_rate_changes", metadata,
    Column("id", BigInteger, primary_key=True),
    Column("currency", String(3), nullable=False),
    Column("old_rate", Rate),
    Column("new_rate", Rate, nullable=False),
    Column("changed_by", Text, nullable=False),
    Column("changed_at", Stamp),
    schema=SCHEMA,
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
    Column("listed", Boolean, nullable=False),
    Column("created_at", Stamp),
    schema=SCHEMA,
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
    schema=SCHEMA,
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
    Column("order_token", Id),
    Column("abandoned_at", Stamp),
    Column("version", Integer, nullable=False),
    Column("created_at", Stamp, nullable=False),
    Column("updated_at", Stamp, nullable=False),
    schema=SCHEMA,
)

# ConvertCart's answer per order (migration 0002 made `snapshot` JSONB: domain/conversion.py's shape)
cart_conversions = Table(
    "cart_conversions", metadata,
    Column("order_token", Id, primary_key=True),
    Column("cart_token", Id, nullable=False),
    Column("user_id", Id, nullable=False),
    Column("status", Text, nullable=False),
    Column("snapshot", JSONB, nullable=False),
    Column("created_at", Stamp),
    Column("released_at", Stamp),
    schema=SCHEMA,
)

# refused ApplyCoupon calls per cart in the current window (migration 0003; coupon_attempts.py)
coupon_attempts = Table(
    "coupon_attempts", metadata,
    Column("cart_token", Id, primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("window_started_at", Stamp, nullable=False),
    schema=SCHEMA,
)

plumbing = plumbing_tables(metadata, SCHEMA)
outbox, audit_log, dead_letters = plumbing.outbox, plumbing.audit_log, plumbing.dead_letters
