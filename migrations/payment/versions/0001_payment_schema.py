"""payment_svc's schema `payment`: payment sessions (one per attempt of an order) and the webhook
inbox. payment_svc reads no other schema: what it knows of an order came in OpenSession.

Revision ID: payment_0001
Revises:
Create Date: 2026-12-02
"""

from alembic import op

from migrations.plumbing import drop_plumbing_v1, plumbing_v1

revision = "payment_0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = r"""
CREATE TABLE payment_sessions (
    token              uuid PRIMARY KEY,
    order_token        uuid NOT NULL,
    attempt            integer NOT NULL CHECK (attempt >= 1),
    user_id            uuid NOT NULL,             -- the order's owner: the only one who may read it
    gateway            varchar(50) NOT NULL CHECK (gateway IN ('razorpay', 'stripe')),
    gateway_order_id   varchar(255),
    gateway_payment_id varchar(255),
    checkout_url       text,
    payment_method     text,
    amount             numeric(12, 2) NOT NULL CHECK (amount >= 0),
    currency           char(3) NOT NULL,
    status             text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'captured', 'failed', 'expired')),
    expires_at         timestamptz NOT NULL,
    order_expires_at   timestamptz NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (order_token, attempt)
);
CREATE INDEX idx_payment_sessions_status ON payment_sessions (status);
CREATE INDEX idx_payment_sessions_expires_at ON payment_sessions (expires_at) WHERE status = 'pending';
CREATE UNIQUE INDEX idx_payment_sessions_gateway_order ON payment_sessions (gateway, gateway_order_id);

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
"""

TABLES = ("webhook_events", "payment_sessions")


def upgrade() -> None:
    op.execute(plumbing_v1("payment"))
    op.execute(SCHEMA)


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
    op.execute(drop_plumbing_v1())
