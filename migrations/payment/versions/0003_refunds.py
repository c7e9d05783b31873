"""Refunds of captured payments (CONTRACT.md Additions "Refunds (admin)").

- refunds: one row per refund of one payment session: ours (origin `api`, asked by an admin) or
  one the gateway reports that we did not start (origin `gateway`, e.g. made in its dashboard).
  `amount` is in the session's currency. A refund that is not `failed` holds its amount, so the
  sum of a session's pending and processed refunds never passes what it captured (the use case
  checks it under the session's row lock). The Idempotency-Key of the request that created it,
  the fingerprint of that request and the answer it got are kept on the row (replays).
- payment_sessions.refunded_amount is not stored: it is the sum of processed refunds.

Revision ID: payment_0003_refunds
Revises: payment_0002_session_leases
Create Date: 2026-12-03
"""

from alembic import op

revision = "payment_0003_refunds"
down_revision = "payment_0002_session_leases"
branch_labels = None
depends_on = None

UPGRADE = r"""
CREATE TABLE refunds (
    refund_id          uuid PRIMARY KEY,
    order_token        uuid NOT NULL,
    payment_token      uuid NOT NULL REFERENCES payment_sessions (token),
    gateway            varchar(50) NOT NULL,
    gateway_payment_id varchar(255) NOT NULL,
    gateway_refund_id  varchar(255),
    amount             numeric(12, 2) NOT NULL CHECK (amount > 0),
    currency           char(3) NOT NULL,
    status             text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'processed', 'failed')),
    reason             text NOT NULL DEFAULT '',
    origin             text NOT NULL DEFAULT 'api' CHECK (origin IN ('api', 'gateway')),
    requested_by       text NOT NULL,
    idempotency_key    text,
    request_hash       text,
    response           jsonb,          -- the answer the creating request got, replayed for its key
    failure_reason     text,
    next_check_at      timestamptz,    -- pending: when the refund reconciler asks the gateway next
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX idx_refunds_idempotency_key ON refunds (idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE UNIQUE INDEX idx_refunds_gateway_refund ON refunds (gateway, gateway_refund_id) WHERE gateway_refund_id IS NOT NULL;
CREATE INDEX idx_refunds_order ON refunds (order_token, created_at);
CREATE INDEX idx_refunds_payment ON refunds (payment_token);
CREATE INDEX idx_refunds_pending ON refunds (next_check_at) WHERE status = 'pending';
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS refunds CASCADE")
