"""order_svc's schema `ordering`: orders, their placements (the saga log) and idempotency keys.

Revision ID: ordering_0001
Revises:
Create Date: 2026-12-02
"""

from alembic import op

from migrations.plumbing import drop_plumbing_v1, plumbing_v1

revision = "ordering_0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = r"""
CREATE TABLE orders (
    order_token     uuid PRIMARY KEY,
    cart_token      uuid NOT NULL,
    user_id         uuid NOT NULL,
    status          text NOT NULL DEFAULT 'pending' CHECK (status IN
                    ('pending', 'awaiting_payment', 'paid', 'fulfilled', 'payment_failed', 'expired', 'cancelled')),
    currency        char(3) NOT NULL,
    items           jsonb NOT NULL,           -- the priced lines (checkout.internal.v1.OrderLine as JSON)
    subtotal        numeric(12, 2) NOT NULL,
    discount_code   text,
    discount_amount numeric(12, 2) NOT NULL DEFAULT 0,
    taxes           jsonb NOT NULL DEFAULT '[]',
    tax_amount      numeric(12, 2) NOT NULL DEFAULT 0,
    total           numeric(12, 2) NOT NULL CHECK (total >= 0),
    exchange_rate   numeric(18, 8) NOT NULL,
    billing         jsonb NOT NULL DEFAULT '{}',
    payment_method  text,
    payment_token   uuid,                     -- the latest payment attempt's session
    payment         jsonb,                    -- that session as payment_svc last told us (checkout.v1.PaymentSession)
    enrollment_ids  uuid[] NOT NULL DEFAULT '{}',
    return_url      text NOT NULL DEFAULT '',
    cancel_url      text NOT NULL DEFAULT '',
    expires_at      timestamptz NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
-- one order per cart: a double submit finds the first
CREATE UNIQUE INDEX idx_orders_cart_token ON orders (cart_token);
CREATE INDEX idx_orders_user_id ON orders (user_id);
CREATE INDEX idx_orders_status ON orders (status);
CREATE INDEX idx_orders_payment_token ON orders (payment_token);
CREATE INDEX idx_orders_unpaid_expiry ON orders (expires_at)
    WHERE status IN ('pending', 'awaiting_payment', 'payment_failed');

-- the saga log of placing an order: written before cart_svc is asked to convert the cart, so
-- that a placement nobody finishes is found and its cart and coupon given back
CREATE TABLE order_placements (
    order_token uuid PRIMARY KEY,
    cart_token  uuid NOT NULL,
    user_id     uuid NOT NULL,
    state       text NOT NULL DEFAULT 'converting' CHECK (state IN ('converting', 'placed', 'abandoned', 'released')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_order_placements_open ON order_placements (created_at) WHERE state IN ('converting', 'abandoned');

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
"""

TABLES = ("idempotency_keys", "order_placements", "orders")


def upgrade() -> None:
    op.execute(plumbing_v1("ordering"))
    op.execute(SCHEMA)


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
    op.execute(drop_plumbing_v1())
