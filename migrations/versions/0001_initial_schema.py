"""The whole checkout schema: catalog, carts, coupons, orders, payments, events, enrollments, audit.

One PostgreSQL database; each table has one owning service (named in its comment) and the others
never write it. Money is numeric(12,2) (never float); exchange rates numeric(18,8).

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = r"""
-- cart_svc: catalog ---------------------------------------------------------------------------
CREATE TABLE internships (
    internship_id uuid PRIMARY KEY,
    title         text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    description   text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE plans (
    plan_id       uuid PRIMARY KEY,
    internship_id uuid NOT NULL REFERENCES internships (internship_id),
    period_value  integer NOT NULL CHECK (period_value BETWEEN 1 AND 36),
    period_unit   text NOT NULL CHECK (period_unit IN ('month', 'year')),
    price         numeric(12, 2) NOT NULL CHECK (price >= 0),
    currency      char(3) NOT NULL DEFAULT 'INR' CHECK (currency = 'INR'),
    UNIQUE (internship_id, period_value, period_unit)
);

CREATE TABLE sales (
    sale_slug      text PRIMARY KEY,
    kind           text NOT NULL CHECK (kind IN ('percent', 'fixed')),
    value          numeric(12, 2) NOT NULL CHECK (value > 0),
    internship_ids uuid[] NOT NULL DEFAULT '{}',
    starts_at      timestamptz,
    ends_at        timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (kind <> 'percent' OR value <= 100)
);

CREATE TABLE exchange_rates (
    currency   char(3) PRIMARY KEY,
    rate       numeric(18, 8) NOT NULL CHECK (rate > 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE exchange_rate_changes (
    id         bigserial PRIMARY KEY,
    currency   char(3) NOT NULL,
    old_rate   numeric(18, 8),
    new_rate   numeric(18, 8) NOT NULL,
    changed_by text NOT NULL,
    changed_at timestamptz NOT NULL DEFAULT now()
);

-- cart_svc: coupons ---------------------------------------------------------------------------
CREATE TABLE coupons (
    code                     text PRIMARY KEY CHECK (code = upper(code) AND length(code) BETWEEN 3 AND 50),
    kind                     text NOT NULL CHECK (kind IN ('percent', 'fixed')),
    value                    numeric(12, 2) NOT NULL CHECK (value > 0),
    currency                 char(3) NOT NULL DEFAULT 'INR',
    min_subtotal             numeric(12, 2) NOT NULL DEFAULT 0 CHECK (min_subtotal >= 0),
    starts_at                timestamptz,
    ends_at                  timestamptz,
    max_redemptions          integer NOT NULL DEFAULT 0 CHECK (max_redemptions >= 0),
    max_redemptions_per_user integer NOT NULL DEFAULT 0 CHECK (max_redemptions_per_user >= 0),
    internship_ids           uuid[] NOT NULL DEFAULT '{}',
    redeemed_count           integer NOT NULL DEFAULT 0 CHECK (redeemed_count >= 0),
    created_at               timestamptz NOT NULL DEFAULT now(),
    CHECK (kind <> 'percent' OR value <= 100),
    -- the last line of defence: no code path can push the count past the limit
    CHECK (max_redemptions = 0 OR redeemed_count <= max_redemptions)
);

-- one row per order that holds a redemption; released when the order will never be paid
CREATE TABLE coupon_redemptions (
    redemption_id uuid PRIMARY KEY,
    code          text NOT NULL REFERENCES coupons (code),
    user_id       uuid NOT NULL,
    order_token   uuid NOT NULL UNIQUE,
    status        text NOT NULL DEFAULT 'held' CHECK (status IN ('held', 'released')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    released_at   timestamptz
);
CREATE INDEX idx_coupon_redemptions_code_user ON coupon_redemptions (code, user_id) WHERE status = 'held';

-- cart_svc: carts (items as JSONB: the cart is one aggregate, read and written whole) -----------
CREATE TABLE carts (
    token           uuid PRIMARY KEY,
    user_id         uuid,
    status          text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'active', 'expired', 'converted')),
    items           jsonb NOT NULL DEFAULT '[]',
    currency        char(3) NOT NULL DEFAULT 'INR',
    sale_slug       text,
    subtotal        numeric(12, 2) NOT NULL DEFAULT 0,
    discount_code   text,
    discount_amount numeric(12, 2) NOT NULL DEFAULT 0,
    tax_rate        numeric(5, 2) NOT NULL DEFAULT 0,
    tax_amount      numeric(12, 2) NOT NULL DEFAULT 0,
    total           numeric(12, 2) NOT NULL DEFAULT 0,
    expires_at      timestamptz NOT NULL,
    device_id       varchar(255),
    analytics_data  jsonb NOT NULL DEFAULT '[]',
    version         integer NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_carts_user_id ON carts (user_id);
CREATE INDEX idx_carts_status ON carts (status);
CREATE INDEX idx_carts_expires_at ON carts (expires_at) WHERE status IN ('draft', 'active');
CREATE INDEX idx_carts_device_id ON carts (device_id);

-- order_svc -----------------------------------------------------------------------------------
CREATE TABLE orders (
    order_token     uuid PRIMARY KEY,
    cart_token      uuid NOT NULL REFERENCES carts (token),
    user_id         uuid NOT NULL,
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN
                    ('pending', 'awaiting_payment', 'paid', 'fulfilled', 'payment_failed', 'expired', 'cancelled')),
    currency        char(3) NOT NULL,
    items           jsonb NOT NULL,
    subtotal        numeric(12, 2) NOT NULL,
    discount_code   text,
    discount_amount numeric(12, 2) NOT NULL DEFAULT 0,
    taxes           jsonb NOT NULL DEFAULT '[]',
    tax_amount      numeric(12, 2) NOT NULL DEFAULT 0,
    total           numeric(12, 2) NOT NULL CHECK (total >= 0),
    exchange_rate   numeric(18, 8) NOT NULL,
    billing         jsonb NOT NULL DEFAULT '{}',
    payment_method  text,
    payment_token   uuid,
    enrollment_id   uuid,
    expires_at      timestamptz NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
-- one order per cart: a double submit finds the first
CREATE UNIQUE INDEX idx_orders_cart_token ON orders (cart_token);
CREATE INDEX idx_orders_user_id ON orders (user_id);
CREATE INDEX idx_orders_status ON orders (status);
CREATE INDEX idx_orders_payment_token ON orders (payment_token);

-- Stripe-style idempotency keys with recovery points (Brandur Leach's pattern)
CREATE TABLE idempotency_keys (
    user_id        uuid NOT NULL,
    key            text NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    request_method text NOT NULL,
    request_hash   text NOT NULL,
    recovery_point text NOT NULL DEFAULT 'started',
    locked_at      timestamptz,
    response_code  integer,
    response_body  bytea,
    order_token    uuid,
    created_at     timestamptz NOT NULL DEFAULT now(),
    last_used_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);
CREATE INDEX idx_idempotency_keys_created_at ON idempotency_keys (created_at);

-- payment_svc ---------------------------------------------------------------------------------
CREATE TABLE payment_tokens (
    token              uuid PRIMARY KEY,
    order_token        uuid NOT NULL REFERENCES orders (order_token),
    attempt            integer NOT NULL CHECK (attempt >= 1),
    gateway            varchar(50) NOT NULL CHECK (gateway IN ('razorpay', 'stripe')),
    gateway_order_id   varchar(255),
    gateway_payment_id varchar(255),
    checkout_url       text,
    amount             numeric(12, 2) NOT NULL CHECK (amount >= 0),
    currency           char(3) NOT NULL,
    status             text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'captured', 'failed', 'expired')),
    expires_at         timestamptz NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (order_token, attempt)
);
CREATE INDEX idx_payment_tokens_order_token ON payment_tokens (order_token);
CREATE INDEX idx_payment_tokens_status ON payment_tokens (status);
CREATE INDEX idx_payment_tokens_expires_at ON payment_tokens (expires_at) WHERE status = 'pending';
CREATE UNIQUE INDEX idx_payment_tokens_gateway_order ON payment_tokens (gateway, gateway_order_id);

-- the webhook inbox: every verified event stored once per gateway + event id
CREATE TABLE webhook_events (
    gateway      varchar(50) NOT NULL,
    event_id     text NOT NULL,
    event_type   text NOT NULL,
    body         bytea NOT NULL,
    status       text NOT NULL DEFAULT 'received' CHECK (status IN ('received', 'processed', 'failed', 'ignored')),
    error        text,
    received_at  timestamptz NOT NULL DEFAULT now(),
    processed_at timestamptz,
    PRIMARY KEY (gateway, event_id)
);

-- every service: the transactional outbox, relayed to NATS JetStream -------------------------
CREATE TABLE outbox (
    id           uuid PRIMARY KEY,
    seq          bigserial UNIQUE,
    aggregate_id text NOT NULL,
    subject      text NOT NULL,
    payload      jsonb NOT NULL,
    headers      jsonb NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX idx_outbox_unpublished ON outbox (seq) WHERE published_at IS NULL;

-- enrollment_svc ------------------------------------------------------------------------------
CREATE TABLE enrollments (
    enrollment_id uuid PRIMARY KEY,
    order_token   uuid NOT NULL UNIQUE,
    user_id       uuid NOT NULL,
    internship_id uuid NOT NULL,
    plan_id       uuid NOT NULL,
    status        text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'cancelled')),
    starts_at     timestamptz NOT NULL,
    ends_at       timestamptz NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_enrollments_user_id ON enrollments (user_id);

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
    UNIQUE (stream, stream_seq)
);

-- every service: the append-only audit trail ----------------------------------------------------
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
"""

TABLES = [
    "audit_log", "dead_letters", "enrollments", "outbox", "webhook_events", "payment_tokens",
    "idempotency_keys", "orders", "carts", "coupon_redemptions", "coupons", "exchange_rate_changes",
    "exchange_rates", "sales", "plans", "internships",
]


def upgrade() -> None:
    op.execute(SCHEMA)


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
    op.execute("DROP FUNCTION IF EXISTS audit_log_is_append_only()")
