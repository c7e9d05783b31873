"""Human order numbers and GST tax documents (invoices, credit notes) in gap-free series.

- orders.order_number: from the sequence order_numbers (gaps allowed: it only names the order;
  INT-<year>-<number> on the wire); the orders already there are numbered by age.
- document_series: the last number taken per series (`INV26-27`, `CN26-27`). A document takes the
  next one in the transaction that issues it (one statement, tax_documents below), so a rollback
  gives it back and the series has no gaps.
- tax_documents: one invoice per paid order, one credit note per processed refund; `details`
  keeps the seller as printed on the day of issue.

Revision ID: ordering_0003
Revises: ordering_0002
Create Date: 2026-12-02
"""

from alembic import op

revision = "ordering_0003"
down_revision = "ordering_0002"
branch_labels = None
depends_on = None

UPGRADE = r"""
CREATE SEQUENCE order_numbers AS bigint;
ALTER TABLE orders ADD COLUMN order_number bigint;
UPDATE orders SET order_number = numbered.n
    FROM (SELECT order_token, nextval('order_numbers') AS n FROM
          (SELECT order_token FROM orders ORDER BY created_at, order_token) AS by_age) AS numbered
    WHERE orders.order_token = numbered.order_token;
ALTER TABLE orders ALTER COLUMN order_number SET DEFAULT nextval('order_numbers'),
                   ALTER COLUMN order_number SET NOT NULL;
ALTER SEQUENCE order_numbers OWNED BY orders.order_number;
CREATE UNIQUE INDEX idx_orders_order_number ON orders (order_number);

CREATE TABLE document_series (
    series      text PRIMARY KEY,
    last_number integer NOT NULL CHECK (last_number >= 1)
);

CREATE TABLE tax_documents (
    series      text NOT NULL,
    sequence    integer NOT NULL CHECK (sequence >= 1),
    kind        text NOT NULL CHECK (kind IN ('invoice', 'credit_note')),
    order_token uuid NOT NULL REFERENCES orders (order_token),
    refund_id   text NOT NULL DEFAULT '',     -- a credit note's refund; '' for the invoice
    amount      numeric(12, 2) NOT NULL CHECK (amount >= 0),
    issued_at   timestamptz NOT NULL,
    details     jsonb NOT NULL,
    PRIMARY KEY (series, sequence)
);
CREATE UNIQUE INDEX idx_tax_documents_of_order ON tax_documents (order_token, kind, refund_id);
"""

DOWNGRADE = r"""
DROP TABLE tax_documents;
DROP TABLE document_series;
DROP INDEX idx_orders_order_number;
ALTER TABLE orders DROP COLUMN order_number;
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
