"""Refund webhooks as the gateways send them (built by the emulator's own refund modules, which
follow Razorpay's and Stripe's documented shapes), mapped to RefundNews."""

from __future__ import annotations

import json

from gateway_emulator.razorpay_events import php_json
from gateway_emulator.razorpay_refunds import refund_entity
from gateway_emulator.refund_book import EmulatedRefund
from gateway_emulator.stripe_events import stripe_event
from gateway_emulator.stripe_refunds import refund_object
from payment_svc.domain.webhook_events import RefundNews, parse_razorpay, parse_stripe

OURS = "0f0e0d0c-0b0a-4908-8706-050403020100"


def razorpay_refund(status: str, event: str) -> bytes:
    refund = EmulatedRefund(id="rfnd_Abc", gateway="razorpay", payment_id="pay_Xyz", amount=176882, currency="INR",
                            notes={"refund_id": OURS}, created_at=1767225600, status=status)
    return php_json({"entity": "event", "event": event, "contains": ["refund"],
                     "payload": {"refund": {"entity": refund_entity(refund)}}, "created_at": 1767225600})


def stripe_refund(status: str) -> dict:
    refund = EmulatedRefund(id="re_Abc", gateway="stripe", payment_id="pi_Xyz", amount=1000, currency="inr",
                            notes={"refund_id": OURS}, created_at=1767225600, status=status,
                            failure_reason="declined" if status == "failed" else None)
    return refund_object(refund)


def test_razorpay_refund_events() -> None:
    for event, status, expected in (("refund.processed", "processed", "processed"), ("refund.failed", "failed", "failed"),
                                    ("refund.created", "pending", "pending")):
        parsed = parse_razorpay(razorpay_refund(status, event), "evt1")
        assert parsed.actionable and parsed.report is None
        assert parsed.refunds == (RefundNews("rfnd_Abc", "pay_Xyz", expected, 176882, "INR", OURS),), parsed


def test_a_razorpay_refund_without_amount_is_ignored_with_a_reason() -> None:
    body = json.dumps({"event": "refund.processed", "payload": {"refund": {"entity": {"id": "rfnd_A"}}}}).encode()
    parsed = parse_razorpay(body, "evt2")
    assert not parsed.actionable and "amount" in parsed.ignored_because


def test_stripe_refund_updated_and_failed() -> None:
    for kind, status, expected in (("refund.updated", "succeeded", "processed"), ("refund.failed", "failed", "failed"),
                                   ("refund.created", "pending", "pending"), ("refund.updated", "canceled", "failed")):
        _, body = stripe_event(kind, stripe_refund(status), api_version="2024-06-20", request_id=None,
                               idempotency_key=None)
        [news] = parse_stripe(body).refunds
        assert (news.gateway_refund_id, news.gateway_payment_id, news.status, news.amount_minor, news.currency,
                news.refund_id) == ("re_Abc", "pi_Xyz", expected, 1000, "INR", OURS)
        assert news.failure_reason == ("declined" if status == "failed" else "")


def test_stripe_charge_refunded_lists_every_refund_and_without_a_list_is_ignored() -> None:
    charge = {"id": "ch_1", "object": "charge", "payment_intent": "pi_Xyz",
              "refunds": {"object": "list", "data": [stripe_refund("succeeded"), {**stripe_refund("pending"), "id": "re_B"}]}}
    _, body = stripe_event("charge.refunded", charge, api_version="2024-06-20", request_id=None, idempotency_key=None)
    assert [(n.gateway_refund_id, n.status) for n in parse_stripe(body).refunds] == [("re_Abc", "processed"),
                                                                                      ("re_B", "pending")]
    _, bare = stripe_event("charge.refunded", {"id": "ch_1", "object": "charge"}, api_version="2024-06-20",
                           request_id=None, idempotency_key=None)
    assert not parse_stripe(bare).actionable
