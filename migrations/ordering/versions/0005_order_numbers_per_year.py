"""Order numbers counted per year: INT-2027-000001 follows INT-2026-004211 (issue 13).

- orders.order_year: the year the order was placed in India (IST), which its number names; the
  number is unique within its year (idx_orders_order_number_in_year), no longer over all years.
- next_order_number(year): the next number of that year, from its own sequence
  `order_numbers_<year>` (made by the first order of the year). A sequence, not a counter row:
  concurrent orders never wait for each other's commit; a rolled back order leaves a gap, which is
  allowed (the number only names the order; invoices have their own gap-free series).
- The orders already there keep their numbers (printed on invoices already); each year's sequence
  starts after the highest number of that year.

Revision ID: ordering_0005_order_numbers
Revises: ordering_0004_refunds
Create Date: 2026-12-03
"""

from alembic import op

revision = "ordering_0005_order_numbers"
down_revision = "ordering_0004_refunds"
branch_labels = None
depends_on = None

UPGRADE = r"""
ALTER TABLE orders ADD COLUMN order_year smallint;
UPDATE orders SET order_year = EXTRACT(YEAR FROM created_at AT TIME ZONE 'Asia/Kolkata');
ALTER TABLE orders ALTER COLUMN order_year SET NOT NULL,
                   ALTER COLUMN order_number DROP DEFAULT;
DROP SEQUENCE order_numbers;
DROP INDEX idx_orders_order_number;
CREATE UNIQUE INDEX idx_orders_order_number_in_year ON orders (order_year, order_number);

CREATE FUNCTION next_order_number(year smallint) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    sequence_name text := format('ordering.%I', 'order_numbers_' || year);
BEGIN
    IF to_regclass(sequence_name) IS NULL THEN
        BEGIN
            EXECUTE format('CREATE SEQUENCE IF NOT EXISTS %s AS bigint', sequence_name);
        EXCEPTION WHEN unique_violation OR duplicate_table THEN
            NULL;  -- another transaction made it at the same moment: use theirs
        END;
    END IF;
    RETURN nextval(sequence_name::regclass);
END
$$;

DO $$
DECLARE
    numbered record;
BEGIN
    FOR numbered IN SELECT order_year, max(order_number) AS last FROM orders GROUP BY order_year LOOP
        EXECUTE format('CREATE SEQUENCE ordering.%I AS bigint START WITH %s',
                       'order_numbers_' || numbered.order_year, numbered.last + 1);
    END LOOP;
END
$$;
"""

DOWNGRADE = r"""
DO $$
DECLARE
    made record;
BEGIN
    FOR made IN SELECT sequencename FROM pg_sequences
                WHERE schemaname = 'ordering' AND sequencename ~ '^order_numbers_[0-9]+$' LOOP
        EXECUTE format('DROP SEQUENCE ordering.%I', made.sequencename);
    END LOOP;
END
$$;
DROP FUNCTION next_order_number(smallint);
DROP INDEX idx_orders_order_number_in_year;
CREATE SEQUENCE order_numbers AS bigint;
SELECT setval('order_numbers', coalesce(max(order_number), 0) + 1, false) FROM orders;
-- one series over all years again: a number a later year repeats is given a new one
UPDATE orders AS later SET order_number = nextval('order_numbers')
    WHERE EXISTS (SELECT 1 FROM orders AS earlier
                  WHERE earlier.order_number = later.order_number AND earlier.order_year < later.order_year);
ALTER TABLE orders ALTER COLUMN order_number SET DEFAULT nextval('order_numbers'), DROP COLUMN order_year;
ALTER SEQUENCE order_numbers OWNED BY orders.order_number;
CREATE UNIQUE INDEX idx_orders_order_number ON orders (order_number);
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
