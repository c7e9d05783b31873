"""GST tax documents of orders: the invoice issued when an order is paid (in the unit of work that
moves it), a credit note when one of its refunds is processed, and both as PDFs for the order's
owner. The number comes from the document's series (domain/invoices.py); what the seller was on
the day of issue is kept with the document, so a reprint says what the first print said."""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Final

from common.clock import utc_now
from common.errors import CheckoutError, ErrorCode
from common.request_context import require_user
from common.uow import UnitOfWork, UnitOfWorkFactory, reading
from common.validation import raise_if_any
from order_svc.domain import invoices
from order_svc.repository import OrderRecord, OrderRepository
from order_svc.service import owned_order
from order_svc.tax_document_repository import DocumentRecord, InvoiceToIssue, TaxDocumentRepository
from order_svc.validation import check_order_token, check_refund_id

# Statuses of an order that was paid: it has (or is owed) its invoice.
INVOICED: Final = frozenset({"paid", "fulfilled", "refunded"})


@dataclasses.dataclass(frozen=True)
class Issuer:
    """The seller as documents issued now print it (settings), and the services' SAC code."""

    seller: invoices.Party
    sac: str


@dataclasses.dataclass(frozen=True)
class Pdf:
    filename: str
    data: bytes


class TaxDocuments:
    def __init__(self, uow: UnitOfWorkFactory, orders: OrderRepository, documents: TaxDocumentRepository,
                 issuer: Issuer, clock: Callable[[], datetime.datetime] = utc_now) -> None:
        self._uow = uow
        self._orders = orders
        self._documents = documents
        self._issuer = issuer
        self._clock = clock

    # -- issuing (inside the caller's unit of work, the order's row locked or just moved) ------------------
    def invoice_to_issue(self, now: datetime.datetime) -> InvoiceToIssue:
        """The invoice of an order paid at `now`, for the statement that pays it (moves.move_order_from)."""
        return InvoiceToIssue(invoices.series("invoice", invoices.financial_year(now)), self._details({}))

    async def issue_invoice(self, uow: UnitOfWork, order: OrderRecord, now: datetime.datetime, *,
                            audited: bool = True) -> str | None:
        """The invoice's number, or None when the order has one. `audited=False`: no audit row of its
        own, the caller notes the number in its move's (the order paid: one row per state change)."""
        return await self._issue(uow, "invoice", order, "", order.total, now, {}, audited=audited)

    async def issue_credit_note(self, uow: UnitOfWork, order: OrderRecord, refund_id: str, amount: Decimal,
                                reason: str, now: datetime.datetime) -> None:
        """For a processed refund; the order's invoice is issued first if it has none yet."""
        await self._issue(uow, "invoice", order, "", order.total, now, {})
        await self._issue(uow, "credit_note", order, refund_id, amount, now, {"reason": reason})

    async def _issue(self, uow: UnitOfWork, kind: invoices.Kind, order: OrderRecord, refund_id: str, amount: Decimal,
                     now: datetime.datetime, extra: dict[str, Any], *, audited: bool = True) -> str | None:
        series = invoices.series(kind, invoices.financial_year(now))
        sequence = await self._documents.issue(uow.conn, series=series, kind=kind, order_token=order.order_token,
                                               refund_id=refund_id, amount=amount, issued_at=now,
                                               details=self._details(extra))
        if sequence is None:
            return None
        number = invoices.document_number(series, sequence)
        if audited:
            uow.audit(actor="order_svc", entity_type="order", entity_id=order.order_token, action=f"issued:{kind}",
                      before=None, after={"number": number, "amount": amount, "refund_id": refund_id})
        return number

    def _details(self, extra: dict[str, Any]) -> dict[str, Any]:
        return {"seller": dataclasses.asdict(self._issuer.seller), "sac": self._issuer.sac, **extra}

    # -- reading -------------------------------------------------------------------------------------------
    async def invoice_pdf(self, order_token: str) -> Pdf:
        """The owner's invoice; one owed (paid before invoices were issued) is issued now."""
        user_id = require_user().user_id
        check_order_token(order_token)
        async with reading(self._uow) as uow:
            order = await owned_order(self._orders, uow.conn, user_id, order_token)
            document = await self._documents.get(uow.conn, order_token, "invoice")
        if document is None:
            if order.status not in INVOICED:
                raise CheckoutError(ErrorCode.ORDER_NOT_PAYABLE,
                                    f"the order is {order.status}: its tax invoice is issued once it is paid")
            document = await self._issue_owed_invoice(order_token)
        from order_svc.invoice_pdf import render  # fpdf2 only where a PDF is drawn

        return Pdf(_filename(document), render(build_document(order, document)))

    async def credit_note_pdf(self, order_token: str, refund_id: str) -> Pdf:
        user_id = require_user().user_id
        check_order_token(order_token)
        problems: list[str] = []
        check_refund_id(problems, refund_id)
        raise_if_any(problems)
        async with reading(self._uow) as uow:
            order = await owned_order(self._orders, uow.conn, user_id, order_token)
            note = await self._documents.get(uow.conn, order_token, "credit_note", refund_id)
            invoice = await self._documents.get(uow.conn, order_token, "invoice")
        if note is None or invoice is None:
            raise CheckoutError(ErrorCode.DOCUMENT_NOT_FOUND, "no credit note for this refund of this order")
        from order_svc.invoice_pdf import render

        return Pdf(_filename(note), render(build_document(order, note, invoice=invoice)))

    async def _issue_owed_invoice(self, order_token: str) -> DocumentRecord:
        async with self._uow() as uow:
            order = await self._orders.get_order(uow.conn, order_token, for_update=True)
            assert order is not None
            await self.issue_invoice(uow, order, self._clock())
            document = await self._documents.get(uow.conn, order_token, "invoice")
            await uow.commit()
        assert document is not None
        return document



def _filename(document: DocumentRecord) -> str:
    return invoices.document_number(document.series, document.sequence).replace("/", "-") + ".pdf"


def build_document(order: OrderRecord, document: DocumentRecord, *,
                   invoice: DocumentRecord | None = None) -> invoices.TaxDocument:
    """What the PDF prints: the order's priced lines and taxes (a credit note: the refunded share)."""
    seller = invoices.Party(**document.details["seller"])
    billing = order.billing
    buyer = invoices.Party(name=billing.get("name", "") or f"Student {order.user_id[:8]}",
                           state=billing.get("state", ""), gstin=billing.get("gstin", ""))
    supply = billing.get("state") or (billing.get("country") if billing.get("country") not in ("", "IN") else "")
    taxes = [invoices.TaxLine(tax["name"], Decimal(tax["rate"]), Decimal(tax["amount"])) for tax in order.taxes]
    sac = document.details["sac"]
    taxable = invoices.taxable_value(order.subtotal, order.discount_amount)
    total, discount = order.total, order.discount_amount
    lines = [invoices.Line(_describe(line), sac, Decimal(line["line_total"])) for line in order.items]
    number = invoices.document_number(document.series, document.sequence)
    refers_to = "" if invoice is None else invoices.document_number(invoice.series, invoice.sequence)
    if document.kind == "credit_note":
        taxable, taxes = invoices.credit_note_figures(document.amount, order.total, taxable, taxes)
        total, discount = document.amount, Decimal("0.00")
        lines = [invoices.Line(f"Refund against invoice {refers_to}", sac, taxable)]
    return invoices.TaxDocument(
        kind="invoice" if document.kind == "invoice" else "credit_note", number=number, issued_at=document.issued_at,
        order_number=invoices.order_number(order.order_number, order.created_at), seller=seller, buyer=buyer,
        place_of_supply=supply or seller.state, currency=order.currency, lines=lines,
        discount=discount, taxable_value=taxable, taxes=taxes, total=total, refers_to=refers_to,
        reason=str(document.details.get("reason", "")))


def _describe(line: dict[str, Any]) -> str:
    period = line.get("period") or {}
    value, unit = int(period.get("value", 0) or 0), period.get("unit", "")
    plan = f" ({value} {unit}{'s' if value != 1 else ''})" if value and unit else ""
    quantity = int(line.get("quantity", 1) or 1)
    return f"{line.get('title', 'Internship')}{plan}" + (f" x {quantity}" if quantity != 1 else "")
