"""coupon_attempts: failed coupon codes per cart in the current window, so that codes cannot be
probed by trying many of them on one cart (cart_svc/coupon_attempts.py).

Revision ID: cart_0003
Revises: cart_0002
Create Date: 2026-12-03
"""

from alembic import op

revision = "cart_0003"
down_revision = "cart_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("""
        CREATE TABLE coupon_attempts (
            cart_token uuid PRIMARY KEY,
            failures integer NOT NULL CHECK (failures >= 0),
            window_started_at timestamptz NOT NULL
        )""")
    op.execute("COMMENT ON TABLE coupon_attempts IS "
               "'refused ApplyCoupon calls per cart since window_started_at (COUPON_ATTEMPTS_PER_CART)'")


def downgrade() -> None:
    op.execute("DROP TABLE coupon_attempts")
