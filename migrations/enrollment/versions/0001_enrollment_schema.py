"""enrollment_svc's schema `enrollment`: one enrollment per line of a paid order.

Revision ID: enrollment_0001
Revises:
Create Date: 2026-12-02
"""

from alembic import op

from migrations.plumbing import drop_plumbing_v1, plumbing_v1

revision = "enrollment_0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = r"""
CREATE TABLE enrollments (
    enrollment_id uuid PRIMARY KEY,
    order_token   uuid NOT NULL,
    line_no       integer NOT NULL CHECK (line_no >= 1),
    user_id       uuid NOT NULL,
    internship_id uuid NOT NULL,
    plan_id       uuid NOT NULL,
    status        text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'cancelled')),
    starts_at     timestamptz NOT NULL,
    ends_at       timestamptz NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (order_token, line_no)   -- the last guard: one enrollment per order line, whatever arrives twice
);
CREATE INDEX idx_enrollments_user_id ON enrollments (user_id);
"""

TABLES = ("enrollments",)


def upgrade() -> None:
    op.execute(plumbing_v1("enrollment"))
    op.execute(SCHEMA)


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
    op.execute(drop_plumbing_v1())
