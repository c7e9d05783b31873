"""GST tax documents over real gRPC and PostgreSQL: the invoice is issued in the transaction that
pays the order, numbered without gaps in its financial year's series, and served to the owner as
a PDF whose text says what the law asks (read back with pypdf); credit notes likewise."""

from __future__ import annotations

import asyncio
import io
import re
from decimal import Decimal

import grpc
import pypdf
import pytest
from sqlalchemy import select

from checkout.v1 import common_pb2, order_pb2
from common.clock import utc_now
from order_svc.domain.invoices import financial_year, series
from order_svc.progress import PaymentOutcome
from order_svc.tables import document_series, plumbing, tax_documents
from tests.integration.order.conftest import OrderStack, fails_with, rows
from tests.support.fake_internal_services import TaxView
from tests.support.tokens import new_user

GSTIN = "27AAPFU0939F1ZV"


def pdf_text(data: bytes) -> str:
    """The document's words, one space between each (a wrapped line reads on)."""
    return " ".join(" ".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(data)).pages).split())


async def placed(stack: OrderStack, user: str, **cart: object) -> order_pb2.Order:
    cart_token = stack.fakes.cart.add_cart(user_id=user, **cart)  # type: ignore[arg-type]
    billing = common_pb2.Billing(country="IN", state="MH", name="Asha Rao", gstin=GSTIN.lower())
    return await stack.place(user, cart_token, billing=billing)


async def paid(stack: OrderStack, order: order_pb2.Order) -> None:
    outcome = PaymentOutcome(order_token=order.order_token, payment_token=order.payment.payment_token, attempt=1,
                             status="captured", amount=Decimal(order.total), currency=order.currency,
                             gateway="razorpay", source="webhook")
    assert await stack.parts.progress.payment_captured(outcome) == "paid"


async def invoice(stack: OrderStack, user: str, order_token: str) -> tuple[str, str]:
    call = stack.stub.GetInvoice(order_pb2.GetInvoiceRequest(order_token=order_token),
                                 metadata=stack.metadata(user))
    body = await call
    headers = dict(await call.initial_metadata())
    assert body.content_type == "application/pdf" and body.data.startswith(b"%PDF-")
    return pdf_text(body.data), headers["content-disposition"]


async def test_a_paid_order_has_a_tax_invoice_that_says_what_the_law_asks(stack: OrderStack) -> None:
    user = new_user()
    order = await placed(stack, user, taxes=(TaxView("IGST", "18", "719.82"),))
    assert re.fullmatch(r"INT-\d{4}-\d{6}", order.order_number), order.order_number
    await paid(stack, order)

    text, disposition = await invoice(stack, user, order.order_token)

    number = re.search(r"Invoice number: (INV\d\d-\d\d/\d{6})", text)
    assert number is not None, text
    assert number.group(1).startswith(series("invoice", financial_year(utc_now())))
    assert disposition == f'inline; filename="{number.group(1).replace("/", "-")}.pdf"'
    for expected in ("TAX INVOICE", "Interns Platform Private Limited", "GSTIN: 29AAGCR4375J1ZU",
                     f"Order: {order.order_number}", "Place of supply: MH", "Asha Rao", f"GSTIN: {GSTIN}",
                     "Backend internship (3 months)", "999293", "Taxable value", "3,999.00", "IGST @ 18%", "719.82",
                     "4,718.82",
                     "Indian Rupees Four Thousand Seven Hundred Eighteen And Paise Eighty Two Only"):
        assert expected in text, (expected, text)
    # a second read is the same document: issued once
    again, _ = await invoice(stack, user, order.order_token)
    assert again == text


async def test_cgst_and_sgst_lines_are_printed_with_their_rates(stack: OrderStack) -> None:
    user = new_user()
    order = await placed(stack, user, taxes=(TaxView("CGST", "9", "359.91"), TaxView("SGST", "9", "359.91")),
                         billing={"country": "IN", "state": "KA"})
    await paid(stack, order)
    text, _ = await invoice(stack, user, order.order_token)
    assert "CGST @ 9%" in text and "SGST @ 9%" in text and text.count("359.91") == 2 and "IGST" not in text


async def test_no_invoice_before_payment_nor_for_another_user(stack: OrderStack) -> None:
    user = new_user()
    order = await placed(stack, user)
    detail = await fails_with(stack.stub.GetInvoice(order_pb2.GetInvoiceRequest(order_token=order.order_token),
                                                    metadata=stack.metadata(user)), 2102)
    assert "awaiting_payment" in detail.message
    await paid(stack, order)
    await fails_with(stack.stub.GetInvoice(order_pb2.GetInvoiceRequest(order_token=order.order_token),
                                           metadata=stack.metadata(new_user())), 1102)
    await fails_with(stack.stub.GetInvoice(order_pb2.GetInvoiceRequest(order_token="not-a-token"),
                                           metadata=stack.metadata(user)), 1000)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stack.stub.GetInvoice(order_pb2.GetInvoiceRequest(order_token=order.order_token))
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_invoice_numbers_have_no_gaps_and_no_repeats_under_concurrent_payments(stack: OrderStack) -> None:
    user = new_user()
    orders = [await placed(stack, user) for _ in range(12)]
    # a document whose transaction rolls back gives its number back
    async with stack.parts.uow() as uow:
        record = await stack.parts.repository.get_order(uow.conn, orders[0].order_token, for_update=True)
        assert record is not None
        await stack.parts.documents.issue_invoice(uow, record, utc_now())
        # no commit: rolled back

    await asyncio.gather(*(paid(stack, order) for order in orders))

    name = series("invoice", financial_year(utc_now()))
    mine = {str(row.order_token): row.sequence for row in await rows(stack.engine, select(
        tax_documents.c.order_token, tax_documents.c.sequence).where(
        tax_documents.c.series == name, tax_documents.c.order_token.in_([o.order_token for o in orders])))}
    assert set(mine) == {order.order_token for order in orders}
    every = sorted(row.sequence for row in await rows(stack.engine, select(tax_documents.c.sequence).where(
        tax_documents.c.series == name)))
    assert every == list(range(1, len(every) + 1)), "the series has a gap or a repeat"
    [last] = await rows(stack.engine, select(document_series.c.last_number).where(document_series.c.series == name))
    assert last.last_number == len(every)


async def test_the_payment_issues_no_second_invoice_for_an_order_that_has_one(stack: OrderStack) -> None:
    """The statement that pays the order issues its invoice only if it has none (as every issue)."""
    user = new_user()
    order = await placed(stack, user)
    async with stack.parts.uow() as uow:
        record = await stack.parts.repository.get_order(uow.conn, order.order_token, for_update=True)
        assert record is not None
        await stack.parts.documents.issue_invoice(uow, record, utc_now())
        await uow.commit()

    await paid(stack, order)

    [invoice] = await rows(stack.engine, select(tax_documents).where(tax_documents.c.order_token == order.order_token))
    audit = plumbing.audit_log
    [move] = await rows(stack.engine, select(audit.c.after).where(audit.c.entity_id == order.order_token,
                                                                  audit.c.action == "status:paid"))
    assert "invoice" not in move.after  # the audit row of the invoice issued before says its number


async def test_a_credit_note_for_a_partial_refund_scales_the_taxes(stack: OrderStack) -> None:
    user = new_user()
    order = await placed(stack, user, subtotal="1000.00", taxes=(TaxView("IGST", "18", "180.00"),),
                         tax_amount="180.00", total="1180.00")
    await paid(stack, order)
    async with stack.parts.uow() as uow:
        record = await stack.parts.repository.get_order(uow.conn, order.order_token, for_update=True)
        assert record is not None
        await stack.parts.documents.issue_credit_note(uow, record, "rfnd_1", Decimal("590.00"), "requested by student",
                                                      utc_now())
        await uow.commit()

    body = await stack.stub.GetCreditNote(order_pb2.GetCreditNoteRequest(order_token=order.order_token,
                                                                         refund_id="rfnd_1"),
                                          metadata=stack.metadata(user))
    text = pdf_text(body.data)
    invoice_text, _ = await invoice(stack, user, order.order_token)
    invoice_number = re.search(r"Invoice number: (\S+)", invoice_text).group(1)  # type: ignore[union-attr]
    for expected in ("CREDIT NOTE", re.compile(r"Credit note number: CN\d\d-\d\d/\d{6}"),
                     f"Against invoice: {invoice_number}", "Reason: requested by student", "IGST @ 18%", "90.00",
                     "500.00", "590.00", "Indian Rupees Five Hundred Ninety Only"):
        assert (expected.search(text) if isinstance(expected, re.Pattern) else expected in text), (expected, text)

    await fails_with(stack.stub.GetCreditNote(order_pb2.GetCreditNoteRequest(order_token=order.order_token,
                                                                            refund_id="rfnd_none"),
                                              metadata=stack.metadata(user)), 2103)
    await fails_with(stack.stub.GetCreditNote(order_pb2.GetCreditNoteRequest(order_token=order.order_token,
                                                                            refund_id="bad id!"),
                                              metadata=stack.metadata(user)), 1000)
