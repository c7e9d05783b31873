"""SQL for GST tax documents in schema `ordering` (migrations/ordering/versions/0003): a document
takes the next number of its series in the statement that inserts it."""

from __future__ import annotations

import dataclasses
import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import CTE, Text, bindparam, exists, literal_column, select, text, true
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from order_svc.tables import document_series, tax_documents


@dataclasses.dataclass(frozen=True)
class DocumentRecord:
    series: str
    sequence: int
    kind: str
    order_token: str
    refund_id: str
    amount: Decimal
    issued_at: datetime.datetime
    details: dict[str, Any]


# The series' counter moves only if the document is new (WHERE NOT EXISTS) and in the same
# statement that inserts it: a rollback undoes both, so numbers are neither skipped nor repeated.
# Two transactions issuing at once wait on the counter's row, in commit order.
_ISSUE = text("""
WITH numbered AS (
    INSERT INTO ordering.document_series AS counter (series, last_number)
    SELECT :series, 1
    WHERE NOT EXISTS (SELECT 1 FROM ordering.tax_documents
                      WHERE order_token = :order_token AND kind = :kind AND refund_id = :refund_id)
    ON CONFLICT (series) DO UPDATE SET last_number = counter.last_number + 1
    RETURNING last_number)
INSERT INTO ordering.tax_documents (series, sequence, kind, order_token, refund_id, amount, issued_at, details)
SELECT :series, last_number, :kind, :order_token, :refund_id, :amount, :issued_at, :details FROM numbered
RETURNING sequence
""").bindparams(bindparam("details", type_=JSONB))



@dataclasses.dataclass(frozen=True)
class InvoiceToIssue:
    """An order's tax invoice, issued by the statement that marks the order paid
    (OrderRepository.update_order_if with `invoice`): numbered in `series`, for the order's total,
    dated when it was paid."""

    series: str
    details: dict[str, Any]


def invoice_of(moved: CTE) -> CTE:
    """The invoice of the order `moved` returns (a CTE of an UPDATE of orders: the order just
    paid), issued as _ISSUE issues a document, so with the same guarantees; nothing when `moved`
    returns no row or the order has its invoice. RETURNING its sequence. Parameters i_series,
    i_details."""
    series = bindparam("i_series", type_=Text)
    new = ~exists().where(tax_documents.c.order_token == moved.c.order_token,
                          tax_documents.c.kind == literal_column("'invoice'"), tax_documents.c.refund_id == literal_column("''"))
    numbered = (pg_insert(document_series)
                .from_select(["series", "last_number"], select(series, literal_column("1")).select_from(moved).where(new))
                .on_conflict_do_update(index_elements=[document_series.c.series],
                                       set_={"last_number": document_series.c.last_number + 1})
                .returning(document_series.c.last_number).cte("numbered"))
    columns = ["series", "sequence", "kind", "order_token", "refund_id", "amount", "issued_at", "details"]
    return (pg_insert(tax_documents)
            .from_select(columns, select(series, numbered.c.last_number, literal_column("'invoice'"), moved.c.order_token,
                                         literal_column("''"), moved.c.total, moved.c.updated_at,
                                         bindparam("i_details", type_=JSONB))
                         .select_from(numbered.join(moved, true())))
            .returning(tax_documents.c.sequence).cte("issued"))


_GET = select(tax_documents).where(tax_documents.c.order_token == bindparam("order_token"),
                                   tax_documents.c.kind == bindparam("kind"),
                                   tax_documents.c.refund_id == bindparam("refund_id"))


class TaxDocumentRepository:
    async def issue(self, conn: AsyncConnection, *, series: str, kind: str, order_token: str, refund_id: str,
                    amount: Decimal, issued_at: datetime.datetime, details: dict[str, Any]) -> int | None:
        """The new document's number in `series`; None when the order has this document already."""
        row = (await conn.execute(_ISSUE, {"series": series, "kind": kind, "order_token": order_token,
                                           "refund_id": refund_id, "amount": amount, "issued_at": issued_at,
                                           "details": details})).first()
        return None if row is None else int(row.sequence)

    async def get(self, conn: AsyncConnection, order_token: str, kind: str, refund_id: str = "") -> DocumentRecord | None:
        row = (await conn.execute(_GET, {"order_token": order_token, "kind": kind, "refund_id": refund_id})).first()
        if row is None:
            return None
        values = dict(row._mapping)
        values["order_token"] = str(values["order_token"])
        return DocumentRecord(**values)
