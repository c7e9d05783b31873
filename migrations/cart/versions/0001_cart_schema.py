"""cart_svc's schema `cart`: catalog, sales, exchange rates, coupons and their redemptions, carts,
and the conversions of carts into orders. Money is numeric(12,2) (never float); rates numeric(18,8).

Revision ID: cart_0001
Revises:
Create Date: 2026-12-02
"""

from alembic import op

from migrations.plumbing import drop_plumbing_v1, plumbing_v1

revision = "cart_0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = r"""
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
    listed                   boolean NOT NULL DEFAULT false,
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

-- the cart is one aggregate (items as JSONB), read and written whole
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
    order_token     uuid,          -- the order that converted it (status converted)
    abandoned_at    timestamptz,   -- when checkout.cart.abandoned was published (once)
    version         integer NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_carts_user_id ON carts (user_id);
CREATE INDEX idx_carts_status ON carts (status);
CREATE INDEX idx_carts_expires_at ON carts (expires_at) WHERE status IN ('draft', 'active');
CREATE INDEX idx_carts_idle ON carts (updated_at) WHERE status = 'active' AND abandoned_at IS NULL;
CREATE INDEX idx_carts_device_id ON carts (device_id);

-- ConvertCart's answer, kept so that a retry for the same order gets exactly the same snapshot
CREATE TABLE cart_conversions (
    order_token  uuid PRIMARY KEY,
    cart_token   uuid NOT NULL REFERENCES carts (token),
    user_id      uuid NOT NULL,
    status       text NOT NULL DEFAULT 'converted' CHECK (status IN ('converted', 'released')),
    snapshot     bytea NOT NULL,   -- checkout.internal.v1.ConvertedCart
    created_at   timestamptz NOT NULL DEFAULT now(),
    released_at  timestamptz
);
CREATE INDEX idx_cart_conversions_cart ON cart_conversions (cart_token);
"""

TABLES = ("cart_conversions", "carts", "coupon_redemptions", "coupons", "exchange_rate_changes", "exchange_rates",
          "sales", "plans", "internships")


def upgrade() -> None:
    op.execute(plumbing_v1("cart"))
    op.execute(SCHEMA)


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
    op.execute(drop_plumbing_v1())
