"""payment_sessions.trace_context: the W3C `traceparent` of the request that opened the session
(common/tracing.py). The gateway's webhook, a request of its own, resumes that trace to record
the capture, so one checkout is one trace from the browser's request to the enrollment. Empty
(NULL) for sessions opened outside any trace.

Revision ID: payment_0004_trace_context
Revises: payment_0003_refunds
Create Date: 2026-12-03
"""

from alembic import op

revision = "payment_0004_trace_context"
down_revision = "payment_0003_refunds"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE payment_sessions ADD COLUMN trace_context text")


def downgrade() -> None:
    op.execute("ALTER TABLE payment_sessions DROP COLUMN trace_context")
