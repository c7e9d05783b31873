"""GetOrder from order_svc's own data, and CreatePaymentAttempt (with fakes)."""

from __future__ import annotations

import dataclasses
import uuid
from decimal import Decimal

from order_svc.progress import PaymentOutcome
from tests.unit.order.fakes import ORDER_TTL, World, world
from tests.unit.order.test_place_order import as_user, new_user, place, refused


async def test_an_order_is_read_from_its_own_row_by_its_owner_only() -> None:
    w, user = world(), new_user()
    view = await place(w, user, w.cart.add_cart(user_id=user))
    w.payments.sessions.clear()  # GetOrder never asks payment_svc

    with as_user(user):
        assert await w.service.get_order(view.order_token) == view
        await refused(w.service.get_order(str(uuid.uuid4())), 2101)
        await refused(w.service.get_order("not-a-token"), 1000)
    with as_user(new_user()):
        await refused(w.service.get_order(view.order_token), 1102)
    await refused(w.service.get_order(view.order_token), 1101)


async def test_a_new_attempt_is_refused_while_the_open_one_lives_and_opened_after_it_failed() -> None:
    w, user = world(), new_user()
    first = await place(w, user, w.cart.add_cart(user_id=user), return_url="https://app.example/back")
    with as_user(user):
        await refused(w.service.new_attempt(first.order_token, ""), 2102)  # payment_svc's refusal, mapped back
        await refused(w.service.new_attempt(first.order_token, "paypal"), 1000)
    with as_user(new_user()):
        await refused(w.service.new_attempt(first.order_token, ""), 1102)
    assert w.repository.orders[first.order_token].payment_attempt == 1

    w.payments.set_status(first.order_token, 1, "failed")
    await w.progress.payment_failed(_failed(w, first.order_token))
    with as_user(user):
        second = await w.service.new_attempt(first.order_token, "stripe")

    order = w.repository.orders[first.order_token]
    assert (order.status, order.payment_token, order.payment_attempt) == ("awaiting_payment", second.payment_token, 2)
    assert order.payment == second.as_json() and second.amount == first.total
    request = w.payments.requests[-1]
    assert (request.attempt, request.gateway, request.return_url) == (2, "stripe", "https://app.example/back")
    assert w.subjects(first.order_token)[-2:] == ["checkout.order.payment_failed", "checkout.order.awaiting_payment"]


async def test_an_expired_session_is_replaced_without_a_status_change() -> None:
    w, user = world(), new_user()
    first = await place(w, user, w.cart.add_cart(user_id=user))
    w.payments.set_status(first.order_token, 1, "expired")

    with as_user(user):
        second = await w.service.new_attempt(first.order_token, "")

    order = w.repository.orders[first.order_token]
    assert (order.status, order.payment_token, order.payment_attempt) == ("awaiting_payment", second.payment_token, 2)
    assert w.payments.requests[-1].gateway == "razorpay"  # the previous attempt's gateway
    assert [a.action for a in w.audits(first.order_token)][-1] == "payment_attempt"


async def test_no_new_attempt_for_an_order_past_its_expiry_or_paid() -> None:
    w, user = world(), new_user()
    view = await place(w, user, w.cart.add_cart(user_id=user))
    w.payments.set_status(view.order_token, 1, "failed")
    w.clock.advance(seconds=ORDER_TTL.total_seconds())
    with as_user(user):
        await refused(w.service.new_attempt(view.order_token, ""), 2102)
    assert len(w.payments.requests) == 1

    paid = await place(w, user, w.cart.add_cart(user_id=user))
    await w.progress.payment_captured(dataclasses.replace(_failed(w, paid.order_token), status="captured"))
    with as_user(user):
        await refused(w.service.new_attempt(paid.order_token, ""), 2102)
    assert len(w.payments.requests) == 2


def _failed(w: World, order_token: str) -> PaymentOutcome:
    order = w.repository.orders[order_token]
    return PaymentOutcome(order_token=order_token, payment_token=order.payment_token, attempt=1, status="failed",
                          amount=Decimal(order.total), currency=order.currency)
