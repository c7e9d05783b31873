"""Coupons are private unless listed: the discounts listing shows only listed coupons (and the
cart's own), so a cart token can no longer be used to harvest every code.

Revision ID: 0003_listed_coupons
Revises: 0002_outbox_notify
Create Date: 2026-11-26
"""

from alembic import op

revision = "0003_listed_coupons"
down_revision = "0002_outbox_notify"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE coupons ADD COLUMN listed boolean NOT NULL DEFAULT false")


def downgrade() -> None:
    op.execute("ALTER TABLE coupons DROP COLUMN listed")
