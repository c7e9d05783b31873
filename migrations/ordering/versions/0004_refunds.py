"""Refunds reach the order (CONTRACT.md Additions "Refunds (admin)"): `refunded_amount` (the sum of
its processed refunds, as payment_svc last told it) and the status `refunded` (fully refunded).

Revision ID: ordering_0004_refunds
Revises: ordering_0003
Create Date: 2026-12-03
"""

from alembic import op

revision = "ordering_0004_refunds"
down_revision = "ordering_0003"
branch_labels = None
depends_on = None

STATUSES = "'pending', 'awaiting_payment', 'paid', 'fulfilled', 'payment_failed', 'expired', 'cancelled'"


def upgrade() -> None:
    op.execute(f"""
ALTER TABLE orders ADD COLUMN refunded_amount numeric(12, 2) NOT NULL DEFAULT 0 CHECK (refunded_amount >= 0);
ALTER TABLE orders DROP CONSTRAINT orders_status_check;
ALTER TABLE orders ADD CONSTRAINT orders_status_check CHECK (status IN ({STATUSES}, 'refunded'));
""")


def downgrade() -> None:
    op.execute(f"""
ALTER TABLE orders DROP CONSTRAINT orders_status_check;
ALTER TABLE orders ADD CONSTRAINT orders_status_check CHECK (status IN ({STATUSES}));
ALTER TABLE orders DROP COLUMN refunded_amount;
""")
