"""SQL for GST tax documents in schema `ordering` (migrations/ordering/versions/0003): a document
takes the next number of its series in the statement that inserts it."""

from __future__ import annotations

import dataclasses
import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, select, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection

from order_svc.tables import tax_documents


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
