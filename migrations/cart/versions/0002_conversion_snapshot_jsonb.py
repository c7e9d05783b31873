"""cart_conversions.snapshot becomes JSONB: the converted cart as plain JSON (cart_svc/domain/conversion.py),
readable by an operator with SQL (which conversions used a coupon, at what rate) instead of opaque
protobuf bytes. ConvertCart answers a repeat from it, so every amount in it is a string.

Revision ID: cart_0002
Revises: cart_0001
Create Date: 2026-12-03
"""

from alembic import op

revision = "cart_0002"
down_revision = "cart_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE cart_conversions ALTER COLUMN snapshot TYPE jsonb "
               "USING convert_from(snapshot, 'UTF8')::jsonb")
    op.execute("COMMENT ON COLUMN cart_conversions.snapshot IS "
               "'the ConvertedCart of this order as JSON (cart_svc/domain/conversion.py)'")


def downgrade() -> None:
    op.execute("COMMENT ON COLUMN cart_conversions.snapshot IS NULL")
    op.execute("ALTER TABLE cart_conversions ALTER COLUMN snapshot TYPE bytea "
               "USING convert_to(snapshot::text, 'UTF8')")
