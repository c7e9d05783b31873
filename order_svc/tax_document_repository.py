"""SQL for GST tax documents in schema `ordering` (migrations/ordering/versions/0003): a document
takes the next number of its series in the statement that inserts it."""

from __future__ import annotations

import dataclasses
import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import CTE, FromClause, Insert, Text, bindparam, exists, literal_column, select, true
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


def _issue(document: FromClause, *, series: Any, kind: Any, refund_id: Any, details: Any) -> Insert:
    """INSERT the document of the one row `document` gives (order_token, amount, issued_at), of
    `kind` and `refund_id`, numbered next in `series`; nothing when `document` gives no row or the
    order has that document already. RETURNING its sequence.

    The series' counter moves only if the document is new (NOT EXISTS) and in the same statement
    that inserts it: a rollback undoes both, so numbers are neither skipped nor repeated. Two
    transactions issuing at once wait on the counter's row, in commit order."""
    new = ~exists().where(tax_documents.c.order_token == document.c.order_token,
                          tax_documents.c.kind == kind, tax_documents.c.refund_id == refund_id)
    numbered = (pg_insert(document_series)
                .from_select(["series", "last_number"], select(series, literal_column("1")).select_from(document).where(new))
                .on_conflict_do_update(index_elements=[document_series.c.series],
                                       set_={"last_number": document_series.c.last_number + 1})
                .returning(document_series.c.last_number).cte("numbered"))
    columns = ["series", "sequence", "kind", "order_token", "refund_id", "amount", "issued_at", "details"]
    return (pg_insert(tax_documents)
            .from_select(columns, select(series, numbered.c.last_number, kind, document.c.order_token, refund_id,
                                         document.c.amount, document.c.issued_at, details)
                         .select_from(numbered.join(document, true())))
            .returning(tax_documents.c.sequence))


# Any document of any order: every value a parameter.
_ISSUE = _issue(select(bindparam("order_token", type_=tax_documents.c.order_token.type).label("order_token"),
                       bindparam("amount", type_=tax_documents.c.amount.type).label("amount"),
                       bindparam("issued_at", type_=tax_documents.c.issued_at.type).label("issued_at"))
                .cte("document"),
                series=bindparam("series", type_=Text), kind=bindparam("kind", type_=Text),
                refund_id=bindparam("refund_id", type_=Text), details=bindparam("details", type_=JSONB))


@dataclasses.dataclass(frozen=True)
class InvoiceToIssue:
    """An order's tax invoice, issued by the statement that marks the order paid
    (OrderRepository.update_order_if with `invoice`): numbered in `series`, for the order's total,
    dated when it was paid."""

    series: str
    details: dict[str, Any]


def invoice_of(moved: CTE) -> CTE:
    """The invoice of the order `moved` returns (a CTE of an UPDATE of orders: the order just
    paid), issued as every document is (_issue); nothing when `moved` returns no row or the order
    has its invoice. RETURNING its sequence. Parameters i_series, i_details."""
    paid = select(moved.c.order_token, moved.c.total.label("amount"), moved.c.updated_at.label("issued_at")).cte("paid")
    return _issue(paid, series=bindparam("i_series", type_=Text), kind=literal_column("'invoice'"),
                  refund_id=literal_column("''"), details=bindparam("i_details", type_=JSONB)).cte("issued")


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
