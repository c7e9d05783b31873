"""Orders keep the client's return and cancel URLs, so a later payment attempt sends the student
back to the same page as the first.

Revision ID: 0004_order_return_urls
Revises: 0003_listed_coupons
Create Date: 2026-11-26
"""

from alembic import op

revision = "0004_order_return_urls"
down_revision = "0003_listed_coupons"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE orders ADD COLUMN return_url text NOT NULL DEFAULT '', ADD COLUMN cancel_url text NOT NULL DEFAULT ''")


def downgrade() -> None:
    op.execute("ALTER TABLE orders DROP COLUMN return_url, DROP COLUMN cancel_url")
