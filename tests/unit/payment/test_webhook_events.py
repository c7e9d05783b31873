"""Mapping webhook bodies (as the emulator builds them, in each gateway's format) to what
apply_payment_outcome needs, and to `ignored` for everything else (payment_svc/domain/webhook_events.py);
and the reconciler's choice of what to apply from a gateway's list of payments."""

from __future__ import annotations

import json

import pytest

from gateway_emulator.razorpay_events import php_json, razorpay_event
from gateway_emulator.store import CheckoutSession, PaymentIntent, RazorpayOrder, RazorpayPayment, StripeCharge
from gateway_emulator.stripe_checkout import session_object
from gateway_emulator.stripe_events import stripe_event
from gateway_emulator.stripe_objects import card_declined, payment_intent_object
from payment_svc.domain.webhook_events import PaymentReport, body_digest_id, parse_razorpay, parse_stripe
from payment_svc.gateways.base import GatewayPayment
from payment_svc.workers.reconciler import what_to_apply


def rzp_payment(status: str = "captured", amount: int = 177000) -> RazorpayPayment:
    return RazorpayPayment(id="pay_Q1", order_id="order_O1", amount=amount, currency="INR", status=status,
                           method="upi", created_at=1767225600)


def rzp_order() -> RazorpayOrder:
    return RazorpayOrder(id="order_O1", amount=177000, currency="INR", receipt="r", notes={}, created_at=1767225600,
                         status="paid", amount_paid=177000, payment_ids=["pay_Q1"])


def test_razorpay_payment_captured_and_order_paid_are_captures():
    for name, order in (("payment.captured", None), ("order.paid", rzp_order())):
        event_id, body = razorpay_event(name, "acc_1", rzp_payment(), order)
        parsed = parse_razorpay(body, event_id)
        assert (parsed.event_id, parsed.event_type) == (event_id, name)
        assert parsed.report == PaymentReport("order_O1", "pay_Q1", "captured", 177000, "INR")


def test_the_events_that_follow_a_capture_are_tried_as_its_repeat_first():
    """Razorpay's order.paid and Stripe's payment_intent.succeeded usually arrive once the capture
    (payment.captured, checkout.session.completed) is applied; only they take the cheap path first."""
    def razorpay(name: str) -> bool:
        event_id, body = razorpay_event(name, "acc_1", rzp_payment("failed" if name == "payment.failed" else "captured"),
                                        rzp_order() if name == "order.paid" else None)
        return parse_razorpay(body, event_id).follows_a_capture

    assert (razorpay("order.paid"), razorpay("payment.captured"), razorpay("payment.failed")) == (True, False, False)
    _, body = stripe_event("payment_intent.succeeded", payment_intent_object(stripe_intent(True)), api_version="v",
                           request_id=None, idempotency_key=None)
    assert parse_stripe(body).follows_a_capture
    stale = parse_razorpay(razorpay_event("order.paid", "acc_1", rzp_payment(), rzp_order())[1], None)
    assert not stale.too_old(stale.created_at + 4 * 24 * 3600, 3 * 24 * 3600).follows_a_capture  # nothing to apply


def test_razorpay_payment_failed_is_a_failure():
    event_id, body = razorpay_event("payment.failed", "acc_1", rzp_payment("failed"))
    assert parse_razorpay(body, event_id).report == PaymentReport("order_O1", "pay_Q1", "failed", 177000, "INR")


def test_razorpay_other_events_are_ignored_with_a_reason():
    event_id, body = razorpay_event("payment.authorized", "acc_1", rzp_payment())
    parsed = parse_razorpay(body, event_id)
    assert parsed.report is None and "payment.authorized" in parsed.ignored_because
    assert parse_razorpay(b"not json", "evt_1").report is None
    assert parse_razorpay(b"[1, 2]", "evt_1").ignored_because == "the body is not a JSON object"
    no_order = php_json({"event": "payment.captured", "payload": {"payment": {"entity": {
        "id": "pay_1", "amount": 100, "currency": "INR"}}}})
    assert parse_razorpay(no_order, "evt_2").report is None
    bad_amount = php_json({"event": "payment.captured", "payload": {"payment": {"entity": {
        "id": "pay_1", "order_id": "order_1", "amount": "100", "currency": "INR"}}}})
    assert parse_razorpay(bad_amount, "evt_3").report is None


def test_razorpay_event_id_falls_back_to_the_body_digest():
    _, body = razorpay_event("payment.captured", "acc_1", rzp_payment())
    assert parse_razorpay(body, None).event_id == body_digest_id(body)
    assert parse_razorpay(body, "").event_id == body_digest_id(body)
    assert parse_razorpay(body, "x" * 500).event_id == body_digest_id(body)
    assert body_digest_id(body).startswith("sha256:") and len(body_digest_id(body)) == 71


def stripe_intent(succeeded: bool, *, received: int = 5000) -> PaymentIntent:
    intent = PaymentIntent(id="pi_1", amount=5000, currency="usd", metadata={}, created=1767225600,
                           client_secret="pi_1_secret_x", description="Café – plan")
    intent.charges.append(StripeCharge("ch_1", "succeeded" if succeeded else "failed", "pm_1", 1767225600))
    if succeeded:
        intent.status, intent.amount_received = "succeeded", received
    else:
        intent.last_payment_error = card_declined("pm_1")
    return intent


def test_stripe_succeeded_uses_amount_received_and_upper_case_currency():
    event_id, body = stripe_event("payment_intent.succeeded", payment_intent_object(stripe_intent(True, received=4999)),
                                  api_version="2026-10-28.endive", request_id="req_1", idempotency_key=None)
    parsed = parse_stripe(body)
    assert parsed.event_id == event_id and parsed.event_type == "payment_intent.succeeded"
    assert parsed.report == PaymentReport("pi_1", "pi_1", "captured", 4999, "USD")


def test_stripe_payment_failed_is_a_failure():
    _, body = stripe_event("payment_intent.payment_failed", payment_intent_object(stripe_intent(False)),
                           api_version="v", request_id=None, idempotency_key=None)
    assert parse_stripe(body).report == PaymentReport("pi_1", "pi_1", "failed", 5000, "USD")


def test_stripe_other_events_are_ignored():
    _, body = stripe_event("charge.refunded", {"id": "ch_1", "object": "charge"}, api_version="v", request_id=None,
                           idempotency_key=None)
    parsed = parse_stripe(body)
    assert parsed.report is None and parsed.event_id.startswith("evt_")
    not_an_intent = json.dumps({"id": "evt_9", "type": "payment_intent.succeeded",
                                "data": {"object": {"id": "cs_1", "object": "checkout.session"}}}).encode()
    assert parse_stripe(not_an_intent).report is None
    assert parse_stripe(b"{").event_id == body_digest_id(b"{")


TOKEN = "5b0c8a52-9d1e-4f7a-8c3b-2a6d4e1f0b9c"


def checkout_session(status: str = "complete", paid: bool = True, intent: str | None = "pi_1",
                     amount: int = 5000) -> dict:
    session = CheckoutSession(
        id="cs_test_1", amount_total=amount, currency="usd", line_items=[], success_url="http://127.0.0.1:8080/",
        cancel_url=None, client_reference_id=TOKEN, metadata={"payment_token": TOKEN}, intent_metadata={},
        intent_description=None, payment_method_types=["card"], created=1767225600, expires_at=1767227460,
        status=status, payment_status="paid" if paid else "unpaid", payment_intent=intent)
    return session_object(session, "http://emulator/checkout/sessions/cs_test_1")


def session_event(event_type: str, session: dict) -> bytes:
    return stripe_event(event_type, session, api_version="v", request_id=None, idempotency_key=None)[1]


# event type, Checkout Session → the report (None: ignored), as a table
CHECKOUT_EVENTS = [
    ("checkout.session.completed", checkout_session(),
     PaymentReport("cs_test_1", "pi_1", "captured", 5000, "USD")),
    ("checkout.session.async_payment_succeeded", checkout_session(),
     PaymentReport("cs_test_1", "pi_1", "captured", 5000, "USD")),
    ("checkout.session.completed", checkout_session(paid=False), None),  # paid later: an async_payment event follows
    ("checkout.session.completed", checkout_session(intent=None), None),  # paid, but by no payment we could name
    ("checkout.session.async_payment_failed", checkout_session(paid=False),
     PaymentReport("cs_test_1", "pi_1", "failed", 5000, "USD")),
    ("checkout.session.expired", checkout_session("expired", paid=False, intent=None),
     PaymentReport("cs_test_1", "cs_test_1", "failed", 5000, "USD")),  # never tried: the session is the payment
    ("checkout.session.expired", checkout_session("expired", paid=False),
     PaymentReport("cs_test_1", "pi_1", "failed", 5000, "USD")),
    ("checkout.session.completed", {**checkout_session(), "amount_total": "5000"}, None),
    ("checkout.session.completed", {**checkout_session(), "object": "payment_intent"}, None),
]


@pytest.mark.parametrize(("event_type", "session", "report"), CHECKOUT_EVENTS)
def test_stripe_checkout_session_events(event_type, session, report):
    parsed = parse_stripe(session_event(event_type, session))
    assert parsed.event_type == event_type
    assert parsed.report == report
    assert (parsed.report is None) == bool(parsed.ignored_because)


def test_a_stripe_intent_names_its_session_by_the_token_in_its_metadata():
    intent = stripe_intent(True)
    intent.metadata = {"payment_token": TOKEN.upper(), "key": "x:1"}
    _, body = stripe_event("payment_intent.succeeded", payment_intent_object(intent), api_version="v",
                           request_id=None, idempotency_key=None)
    assert parse_stripe(body).report == PaymentReport("pi_1", "pi_1", "captured", 5000, "USD", TOKEN)
    for unusable in ("not-a-uuid", "", TOKEN + "x", 42):
        intent.metadata = {"payment_token": unusable}  # type: ignore[dict-item]
        _, body = stripe_event("payment_intent.payment_failed", payment_intent_object(intent), api_version="v",
                               request_id=None, idempotency_key=None)
        assert parse_stripe(body).report.payment_token == ""  # type: ignore[union-attr]


def payment(pid: str, status: str, order: str = "order_O1") -> GatewayPayment:
    return GatewayPayment(id=pid, order_id=order, status=status, amount_minor=177000, currency="INR")  # type: ignore[arg-type]


def test_reconcile_applies_every_capture_oldest_first_else_the_newest_failure():
    newest_first = [payment("pay_3", "captured"), payment("pay_2", "failed"), payment("pay_1", "captured")]
    assert [p.id for p in what_to_apply("order_O1", newest_first)] == ["pay_1", "pay_3"]
    assert [p.id for p in what_to_apply("order_O1", [payment("pay_2", "failed"), payment("pay_1", "failed")])] == ["pay_2"]
    # a failure followed by a payment still in progress: not news yet
    assert what_to_apply("order_O1", [payment("pay_2", "pending"), payment("pay_1", "failed")]) == []
    assert what_to_apply("order_O1", []) == []
    # a payment of another order is never applied to this one
    assert what_to_apply("order_O1", [payment("pay_9", "captured", order="order_Other")]) == []


def test_a_razorpay_payment_event_has_its_payment_and_type_as_subject_and_its_time():
    event_id, body = razorpay_event("payment.captured", "acc_1", rzp_payment())
    parsed = parse_razorpay(body, event_id)
    assert parsed.subject == "pay_Q1:payment.captured" and parsed.created_at == json.loads(body)["created_at"]
    assert parse_razorpay(body, "evt_other").subject == parsed.subject  # whatever the header says
    ignored = parse_razorpay(razorpay_event("payment.authorized", "acc_1", rzp_payment())[1], "evt_1")
    assert ignored.subject is None  # nothing applied: nothing to be a duplicate of


def test_too_old_ignores_an_event_past_the_window_only():
    event_id, body = razorpay_event("payment.captured", "acc_1", rzp_payment())
    parsed = parse_razorpay(body, event_id)
    created = parsed.created_at
    assert created is not None
    window = 3 * 24 * 3600
    assert parsed.too_old(created + window, window) is parsed  # exactly 72 h: still in
    old = parsed.too_old(created + window + 1800, window)
    assert (old.report, old.subject, old.ignored_because) == (None, None, "the event is 72.5 h old, past the 72 h window")


def test_amounts_a_session_cannot_hold_and_unprintable_types_are_ignored():
    def capture(**entity):
        return php_json({"event": "payment.captured", "payload": {"payment": {"entity": {
            "id": "pay_1", "order_id": "order_1", "amount": 100, "currency": "INR", **entity}}}})

    assert parse_razorpay(capture(amount=10**12 - 1), "e").report is not None  # 9,999,999,999.99: the largest
    for bad in (capture(amount=10**12), capture(amount=10**30), capture(amount=True), capture(currency="IN\u0000")):
        parsed = parse_razorpay(bad, "e")
        assert parsed.report is None and "0 to 999999999999" in parsed.ignored_because
    unprintable = php_json({"event": "payment.captured\u0007", "payload": {}})
    assert (parse_razorpay(unprintable, "e").event_type, parse_razorpay(unprintable, "e").report) == ("", None)
    deep = b'{"event": ' + b"[" * 50_000 + b"]" * 50_000 + b"}"
    assert parse_razorpay(deep, "e").ignored_because == "the body is not a JSON object"
    assert parse_stripe(deep).ignored_because == "the body is not a JSON object"
