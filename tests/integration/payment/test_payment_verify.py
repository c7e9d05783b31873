"""PaymentService.GetPayment and VerifyPayment (Razorpay's browser callback) over real gRPC:
the signature, the gateway's own word on the payment, one capture however many callbacks race."""

from __future__ import annotations

import asyncio

from checkout.v1 import payment_pb2
from payment_svc.domain.callback_signature import expected_signature
from payment_svc.tables import PLUMBING
from tests.support.payments import (
    audit_rows,
    count_rows,
    events,
    fails_with,
    new_order_token,
    open_session,
    payment_row,
    payment_subjects,
)
from tests.support.tokens import bearer, new_user

audit_log, outbox = PLUMBING.audit_log, PLUMBING.outbox

KEY_SECRET = "dev-key-secret"


async def paid_at_razorpay(stack, engine, user: str, **pay_options):
    """An order with a Razorpay session, paid on the emulator: (order, session, the callback's fields)."""
    order = new_order_token()
    session = await open_session(stack, order, user)
    outcome = stack.emulator.pay(session.gateway_order_id, **pay_options)
    params = outcome["redirect_params"]
    callback = payment_pb2.VerifyPaymentRequest(razorpay_order_id=params["razorpay_order_id"],
                                                razorpay_payment_id=params["razorpay_payment_id"],
                                                razorpay_signature=params["razorpay_signature"])
    return order, session, callback


async def test_valid_callback_captures_and_says_so_to_order_svc(stack, engine):
    user = new_user()
    order, session, callback = await paid_at_razorpay(stack, engine, user)
    payment = await stack.payments.VerifyPayment(callback, metadata=bearer(stack.settings, user))

    assert payment.status == "captured" and payment.payment_token == session.payment_token
    assert payment.gateway_payment_id == callback.razorpay_payment_id and payment.amount == "1770.00"
    [captured] = await events(engine, order, "checkout.payment.captured")
    assert captured.pop("occurred_at").endswith("Z")
    assert captured == {"order_token": order, "payment_token": session.payment_token, "user_id": user, "attempt": 1,
                        "amount": "1770.00", "currency": "INR", "gateway": "razorpay",
                        "gateway_order_id": session.gateway_order_id, "status": "captured",
                        "gateway_payment_id": callback.razorpay_payment_id, "source": "callback", "reason": "",
                        "expires_at": session.expires_at, "checkout_url": ""}
    # payment_svc moves no order: order_svc hears the capture and pays the order
    assert await payment_subjects(engine, order) == ["checkout.payment.session_opened", "checkout.payment.captured"]
    assert [r.action for r in await audit_rows(engine, session.payment_token)] == ["session_opened", "status:captured"]
    assert await audit_rows(engine, order) == []

    # the same callback again (a browser refresh): the same answer, nothing new
    again = await stack.payments.VerifyPayment(callback, metadata=bearer(stack.settings, user))
    assert again.status == "captured"
    assert len(await events(engine, order, "checkout.payment.captured")) == 1


async def test_tampered_signature_is_3101_and_changes_nothing(stack, engine):
    user = new_user()
    order, session, callback = await paid_at_razorpay(stack, engine, user)
    before = await count_rows(engine, outbox, outbox.c.aggregate_id == order)
    calls_before = len(stack.emulator.control("GET", "requests")["requests"])
    forged = [
        payment_pb2.VerifyPaymentRequest(razorpay_order_id=callback.razorpay_order_id,
                                         razorpay_payment_id=callback.razorpay_payment_id,
                                         razorpay_signature=_tampered(callback.razorpay_signature)),
        payment_pb2.VerifyPaymentRequest(razorpay_order_id=callback.razorpay_order_id,
                                         razorpay_payment_id="pay_SomeoneElses1",
                                         razorpay_signature=callback.razorpay_signature),
        payment_pb2.VerifyPaymentRequest(razorpay_order_id=callback.razorpay_order_id,
                                         razorpay_payment_id=callback.razorpay_payment_id,
                                         razorpay_signature=expected_signature("wrong-secret", callback.razorpay_order_id,
                                                                               callback.razorpay_payment_id)),
    ]
    for request in forged:
        await fails_with(stack.payments.VerifyPayment(request, metadata=bearer(stack.settings, user)), 3101)

    assert (await payment_row(engine, session.payment_token)).status == "pending"
    assert await count_rows(engine, outbox, outbox.c.aggregate_id == order) == before
    assert len(stack.emulator.control("GET", "requests")["requests"]) == calls_before  # not even a fetch


async def test_amount_mismatch_is_not_paid_and_is_flagged(stack, engine):
    user = new_user()
    order, session, callback = await paid_at_razorpay(stack, engine, user, amount=100)  # ₹1.00 of ₹1770.00
    payment = await stack.payments.VerifyPayment(callback, metadata=bearer(stack.settings, user))

    assert payment.status == "pending"
    assert await events(engine, order, "checkout.payment.captured") == []
    flagged = [r for r in await audit_rows(engine, session.payment_token) if r.flagged]
    assert len(flagged) == 1 and flagged[0].action == "outcome:flagged"
    assert (flagged[0].after["reported_amount"], flagged[0].after["expected_amount"]) == ("1.00", "1770.00")
    [event] = await events(engine, order, "checkout.payment.flagged")
    assert event["gateway_payment_id"] == callback.razorpay_payment_id


async def test_racing_callbacks_capture_once(stack, engine):
    user = new_user()
    order, session, callback = await paid_at_razorpay(stack, engine, user)
    results = await asyncio.gather(*(stack.payments.VerifyPayment(callback, metadata=bearer(stack.settings, user))
                                     for _ in range(4)))

    assert {r.status for r in results} == {"captured"}
    assert len(await events(engine, order, "checkout.payment.captured")) == 1
    captures = await count_rows(engine, audit_log, audit_log.c.entity_id == session.payment_token,
                                audit_log.c.action == "status:captured")
    assert captures == 1


async def test_callback_needs_the_owner(stack, engine):
    user = new_user()
    order, session, callback = await paid_at_razorpay(stack, engine, user)
    await fails_with(stack.payments.VerifyPayment(callback), 1101)
    await fails_with(stack.payments.VerifyPayment(callback, metadata=bearer(stack.settings, new_user())), 1102)
    unknown = payment_pb2.VerifyPaymentRequest(
        razorpay_order_id="order_Unknown0000001", razorpay_payment_id="pay_Unknown00000001",
        razorpay_signature=expected_signature(KEY_SECRET, "order_Unknown0000001", "pay_Unknown00000001"))
    await fails_with(stack.payments.VerifyPayment(unknown, metadata=bearer(stack.settings, user)), 3004)
    await fails_with(stack.payments.VerifyPayment(payment_pb2.VerifyPaymentRequest(),
                                                  metadata=bearer(stack.settings, user)), 1000)
    assert (await payment_row(engine, session.payment_token)).status == "pending"
    assert await events(engine, order, "checkout.payment.captured") == []


async def test_callback_when_razorpay_is_unreachable_is_4001_and_changes_nothing(stack, engine):
    user = new_user()
    order, session, callback = await paid_at_razorpay(stack, engine, user)
    stack.emulator.set_faults("razorpay", down=True)
    detail = await fails_with(stack.payments.VerifyPayment(callback, metadata=bearer(stack.settings, user)), 4001)
    assert detail.retryable
    assert (await payment_row(engine, session.payment_token)).status == "pending"
    stack.emulator.set_faults("razorpay", down=False)
    payment = await stack.payments.VerifyPayment(callback, metadata=bearer(stack.settings, user))
    assert payment.status == "captured"


async def test_get_payment_owner_only(stack, engine):
    user = new_user()
    order = new_order_token()
    session = await open_session(stack, order, user, payment_method="upi")
    assert (session.key_id, session.payment_method) == ("rzp_test_devkey", "upi")  # Razorpay Checkout's key and prefill
    request = payment_pb2.GetPaymentRequest(payment_token=session.payment_token)

    payment = await stack.payments.GetPayment(request, metadata=bearer(stack.settings, user))
    assert (payment.key_id, payment.payment_method) == ("rzp_test_devkey", "upi")
    assert (payment.payment_token, payment.order_token, payment.status) == (session.payment_token, order, "pending")
    assert (payment.gateway, payment.gateway_order_id, payment.checkout_url) == (
        "razorpay", session.gateway_order_id, session.checkout_url)
    assert payment.amount == "1770.00" and payment.currency == "INR" and payment.gateway_payment_id == ""
    assert payment.expires_at == session.expires_at and payment.created_at and payment.updated_at

    await fails_with(stack.payments.GetPayment(request), 1101)
    await fails_with(stack.payments.GetPayment(request, metadata=bearer(stack.settings, new_user())), 1102)
    await fails_with(stack.payments.GetPayment(payment_pb2.GetPaymentRequest(
        payment_token="6b1e0000-0000-4000-8000-000000000000"), metadata=bearer(stack.settings, user)), 3004)
    await fails_with(stack.payments.GetPayment(payment_pb2.GetPaymentRequest(payment_token="nope"),
                                               metadata=bearer(stack.settings, user)), 1000)



def _tampered(signature: str) -> str:
    """Another signature, always (a fixed last character would equal the real one 1 time in 16)."""
    return signature[:-1] + ("1" if signature[-1] == "0" else "0")
