"""Issue 16: the round trips order_svc makes to PostgreSQL for one checkout, statement by
statement (tests/support/round_trips.py counts them: a BEGIN or a lone COMMIT is one too). A
change that adds one to this path should have to say so here."""

from __future__ import annotations

import uuid
from decimal import Decimal

from sqlalchemy import select

from common.errors import CheckoutError, ErrorCode
from order_svc.domain.invoices import document_number
from order_svc.progress import PaymentOutcome
from order_svc.tables import plumbing, tax_documents
from tests.integration.order.conftest import OrderStack, fails_with, rows
from tests.support.round_trips import round_trips
from tests.support.tokens import new_user


async def test_creating_an_order_with_a_new_key(stack: OrderStack) -> None:
    user, key = new_user(), str(uuid.uuid4())
    cart = stack.fakes.cart.add_cart(user_id=user)
    with round_trips(stack.engine) as trips:
        await stack.place(user, cart, key)
    assert trips == [
        "WITH idempotency_keys",  # the key and the placement (step 1): one statement, autocommit
        "BEGIN", "WITH order_placements", "WITH -",  # the order (step 3); its event and audit row + COMMIT
        "BEGIN", "WITH orders", "WITH -",  # awaiting_payment with the key's answer (one statement); event, audit
    ]


async def test_creating_an_order_without_a_key(stack: OrderStack) -> None:
    user = new_user()
    cart = stack.fakes.cart.add_cart(user_id=user)
    with round_trips(stack.engine) as trips:
        await stack.place(user, cart)
    assert trips == [
        "INSERT order_placements",  # step 1: one statement, autocommit
        "BEGIN", "WITH order_placements", "WITH -",
        "BEGIN", "UPDATE orders", "WITH -",  # no key to finish
    ]


async def test_replaying_a_key(stack: OrderStack) -> None:
    user, key = new_user(), str(uuid.uuid4())
    cart = stack.fakes.cart.add_cart(user_id=user)
    first = await stack.place(user, cart, key)
    with round_trips(stack.engine) as trips:
        assert await stack.place(user, cart, key) == first
    assert trips == ["WITH idempotency_keys", "SELECT idempotency_keys"]  # refused (finished), then read: no BEGIN


async def test_paying_and_fulfilling_an_order(stack: OrderStack) -> None:
    user = new_user()
    order = await stack.place(user, stack.fakes.cart.add_cart(user_id=user))
    outcome = PaymentOutcome(order_token=order.order_token, payment_token=order.payment.payment_token, attempt=1,
                             status="captured", amount=Decimal(order.total), currency=order.currency,
                             gateway="razorpay", source="webhook")
    with round_trips(stack.engine) as trips:
        assert await stack.parts.progress.payment_captured(outcome) == "paid"
    assert trips == ["BEGIN", "WITH orders", "WITH -"]  # paid with its tax invoice (one statement); event, audit
    with round_trips(stack.engine) as trips:
        assert await stack.parts.progress.enrollments_created(order.order_token, [str(uuid.uuid4())]) == "fulfilled"
    assert trips == ["BEGIN", "UPDATE orders", "WITH -"]

    [invoice] = await rows(stack.engine, select(tax_documents).where(tax_documents.c.order_token == order.order_token))
    assert (invoice.kind, invoice.amount, invoice.refund_id) == ("invoice", Decimal(order.total), "")
    audit = plumbing.audit_log
    actions = await rows(stack.engine, select(audit.c.action, audit.c.after).where(
        audit.c.entity_id == order.order_token).order_by(audit.c.id))
    assert [row.action for row in actions] == ["created", "status:awaiting_payment", "status:paid", "status:fulfilled"]
    assert actions[2].after["invoice"] == document_number(invoice.series, invoice.sequence)  # one row per state change


async def test_a_final_refusal_is_stored_with_the_key_by_one_statement(stack: OrderStack) -> None:
    user, key = new_user(), str(uuid.uuid4())
    cart = stack.fakes.cart.add_cart(user_id=user)
    stack.fakes.cart.refusal = CheckoutError(ErrorCode.INVALID_COUPON, "the coupon ran out")
    with round_trips(stack.engine) as trips:
        await fails_with(stack.place(user, cart, key), 2004)
    assert trips == [
        "WITH idempotency_keys",  # the key and the placement
        "BEGIN", "SELECT order_placements", "UPDATE order_placements", "COMMIT",  # the placement refused
        "UPDATE idempotency_keys",  # the refusal is the key's answer: one statement, autocommit
    ]
