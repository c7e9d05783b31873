"""Processed refunds reach the order (order_svc/progress.refund_processed) on real PostgreSQL:
refunded_amount follows payment_svc's total, one credit note per refund however often the event
comes, a fully refunded order becomes `refunded` with one checkout.order.refunded event; a partial
refund keeps the order's status. An order of 4718.82 INR (3999.00 + IGST 719.82)."""

from __future__ import annotations

import uuid
from decimal import Decimal

from sqlalchemy import select

from checkout.v1 import order_pb2
from order_svc.progress import RefundProcessed
from order_svc.tables import orders, plumbing, tax_documents
from tests.integration.order.conftest import OrderStack, rows
from tests.integration.order.test_tax_documents import paid, placed
from tests.support.fake_internal_services import TaxView
from tests.support.tokens import new_user


def processed(order_token: str, refund_id: str, amount: str, refunded: str, full: bool) -> RefundProcessed:
    return RefundProcessed(order_token=order_token, refund_id=refund_id, amount=Decimal(amount), currency="INR",
                           refunded_amount=Decimal(refunded), fully_refunded=full, reason="withdrew")


async def test_partial_then_full_refund(stack: OrderStack) -> None:
    user = new_user()
    order = await placed(stack, user, taxes=(TaxView("IGST", "18", "719.82"),))
    await paid(stack, order)
    progress, token = stack.parts.progress, order.order_token
    first, second = str(uuid.uuid4()), str(uuid.uuid4())

    assert await progress.refund_processed(processed(token, first, "1000.00", "1000.00", False)) == "refund_noted"
    assert await progress.refund_processed(processed(token, first, "1000.00", "1000.00", False)) == "duplicate"
    [row] = await rows(stack.engine, select(orders.c.status, orders.c.refunded_amount).where(orders.c.order_token == token))
    assert (row.status, row.refunded_amount) == ("paid", Decimal("1000.00"))

    assert await progress.refund_processed(processed(token, second, "3718.82", "4718.82", True)) == "refunded"
    assert await progress.refund_processed(processed(token, second, "3718.82", "4718.82", True)) == "duplicate"
    # the first refund's event again, late: the total never goes down
    assert await progress.refund_processed(processed(token, first, "1000.00", "1000.00", False)) == "duplicate"
    [row] = await rows(stack.engine, select(orders.c.status, orders.c.refunded_amount).where(orders.c.order_token == token))
    assert (row.status, row.refunded_amount) == ("refunded", Decimal("4718.82"))

    notes = await rows(stack.engine, select(tax_documents.c.refund_id, tax_documents.c.amount)
                       .where(tax_documents.c.order_token == token, tax_documents.c.kind == "credit_note")
                       .order_by(tax_documents.c.amount))
    assert [(n.refund_id, n.amount) for n in notes] == [(first, Decimal("1000.00")), (second, Decimal("3718.82"))]
    events = await rows(stack.engine, select(plumbing.outbox.c.subject).where(
        plumbing.outbox.c.aggregate_id == token, plumbing.outbox.c.subject == "checkout.order.refunded"))
    assert len(events) == 1
    view = await stack.stub.GetOrder(order_pb2.GetOrderRequest(order_token=token), metadata=stack.metadata(user))
    assert (view.status, view.refunded_amount) == ("refunded", "4718.82")


async def test_a_refund_in_another_currency_is_flagged(stack: OrderStack) -> None:
    user = new_user()
    order = await placed(stack, user, taxes=(TaxView("IGST", "18", "719.82"),))
    await paid(stack, order)
    refund = RefundProcessed(order_token=order.order_token, refund_id=str(uuid.uuid4()), amount=Decimal("10.00"),
                             currency="USD", refunded_amount=Decimal("10.00"), fully_refunded=False)
    assert await stack.parts.progress.refund_processed(refund) == "flagged"
    [row] = await rows(stack.engine, select(orders.c.refunded_amount).where(orders.c.order_token == order.order_token))
    assert row.refunded_amount == Decimal("0.00")
