"""Leases instead of advisory locks held across a gateway call, free sessions, and the
reconciler's schedule (issue 11, items 3, 5 and 6).

- payment_sessions.leased_until: the lease of the one call talking to a gateway about the session
  (set and committed before the call, cleared by the transaction that stores what it learnt)
  instead of an advisory lock held on a connection across the call. OpenSession: a concurrent
  opener sees it and waits for the row, and takes over once it has run out (the opener died).
  The reconciler: a session leased by another reconciler is skipped.
- payment_sessions.gateway may be `none`: an order of 0.00 needs no gateway (captured at once).
- webhook_events.subject: what makes two deliveries one event whatever their ids (Razorpay:
  "<payment id>:<event type>"), unique per gateway among the events applied.
- payment_sessions.next_check_at / reconcile_checks: when the reconciler looks the session up
  next, and how often it has (exponential backoff with jitter, capped).

Revision ID: payment_0002_session_leases
Revises: payment_0001
Create Date: 2026-12-03
"""

from alembic import op

revision = "payment_0002_session_leases"
down_revision = "payment_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
ALTER TABLE payment_sessions
    ADD COLUMN leased_until timestamptz,
    ADD COLUMN next_check_at timestamptz,
    ADD COLUMN reconcile_checks integer NOT NULL DEFAULT 0 CHECK (reconcile_checks >= 0),
    DROP CONSTRAINT payment_sessions_gateway_check,
    ADD CONSTRAINT payment_sessions_gateway_check CHECK (gateway IN ('razorpay', 'stripe', 'none'));
CREATE INDEX idx_payment_sessions_next_check ON payment_sessions (next_check_at)
    WHERE status IN ('pending', 'expired') AND gateway_order_id IS NOT NULL;
ALTER TABLE webhook_events ADD COLUMN subject text;
CREATE UNIQUE INDEX idx_webhook_events_subject ON webhook_events (gateway, subject) WHERE subject IS NOT NULL;
""")


def downgrade() -> None:
    op.execute("""
DROP INDEX IF EXISTS idx_webhook_events_subject;
ALTER TABLE webhook_events DROP COLUMN subject;
DROP INDEX IF EXISTS idx_payment_sessions_next_check;
DELETE FROM payment_sessions WHERE gateway = 'none';
ALTER TABLE payment_sessions
    DROP CONSTRAINT payment_sessions_gateway_check,
    ADD CONSTRAINT payment_sessions_gateway_check CHECK (gateway IN ('razorpay', 'stripe')),
    DROP COLUMN reconcile_checks,
    DROP COLUMN next_check_at,
    DROP COLUMN leased_until;
""")
