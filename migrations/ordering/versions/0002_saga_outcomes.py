"""What the saga and the payment events need besides 0001: the attempt an order's payment view
belongs to, and how a placement that made no order of its own ended.

- orders.payment_attempt: the attempt of the session in orders.payment / payment_token (0 = none
  yet). An event of an older attempt never overwrites a newer attempt's view.
- order_placements.state gains `superseded` (ConvertCart answered another placement's order: a
  double submit; resolved_order_token names it) and `refused` (ConvertCart refused the cart:
  nothing was taken, nothing to release).

Revision ID: ordering_0002
Revises: ordering_0001
Create Date: 2026-12-03
"""

from alembic import op

revision = "ordering_0002"
down_revision = "ordering_0001"
branch_labels = None
depends_on = None

UPGRADE = r"""
ALTER TABLE orders ADD COLUMN payment_attempt integer NOT NULL DEFAULT 0 CHECK (payment_attempt >= 0);

ALTER TABLE order_placements DROP CONSTRAINT order_placements_state_check;
ALTER TABLE order_placements ADD CONSTRAINT order_placements_state_check
    CHECK (state IN ('converting', 'placed', 'abandoned', 'released', 'superseded', 'refused'));
ALTER TABLE order_placements ADD COLUMN resolved_order_token uuid;
"""

DOWNGRADE = r"""
ALTER TABLE order_placements DROP COLUMN resolved_order_token;
UPDATE order_placements SET state = 'released' WHERE state IN ('superseded', 'refused');
ALTER TABLE order_placements DROP CONSTRAINT order_placements_state_check;
ALTER TABLE order_placements ADD CONSTRAINT order_placements_state_check
    CHECK (state IN ('converting', 'placed', 'abandoned', 'released'));
ALTER TABLE orders DROP COLUMN payment_attempt;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
