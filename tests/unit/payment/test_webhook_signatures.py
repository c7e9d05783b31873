"""Webhook signature checks (payment_svc/domain/webhook_signatures.py) against bodies in each gateway's
real format, cross-checked with the official SDKs' own verifiers and the emulator's signer."""

from __future__ import annotations

import time

import pytest
import razorpay
import stripe

from gateway_emulator.razorpay_events import php_json
from gateway_emulator.signing import razorpay_webhook_signature, stripe_signature_header
from payment_svc.domain.webhook_signatures import parse_stripe_header, verify_razorpay, verify_stripe

RZP_SECRET = "dev-webhook-secret"
STRIPE_SECRET = "dev-stripe-webhook-secret"

# Razorpay's PHP encoding: compact, ASCII only, "/" escaped as "\/" (re-serialising changes the bytes)
RAZORPAY_BODY = php_json({
    "entity": "event", "account_id": "acc_EmulatorDev001", "event": "payment.captured", "contains": ["payment"],
    "payload": {"payment": {"entity": {"id": "pay_Abc123", "entity": "payment", "amount": 177000, "currency": "INR",
                                       "status": "captured", "order_id": "order_Xyz789", "method": "upi",
                                       "description": "Intern \u2013 Café https://x.example/a/b", "captured": True}}},
    "created_at": 1767225600,
})
# Stripe's: pretty-printed UTF-8
STRIPE_BODY = ('{\n  "id": "evt_1Test",\n  "object": "event",\n  "type": "payment_intent.succeeded",\n'
               '  "data": {\n    "object": {\n      "id": "pi_1Test",\n      "description": "Café – ₹ plan"\n    }\n  }\n}'
               ).encode()


def test_the_body_really_is_in_razorpays_encoding():
    assert b"\\/" in RAZORPAY_BODY and b"\\u2013" in RAZORPAY_BODY and RAZORPAY_BODY.isascii()


# ---- Razorpay ---------------------------------------------------------------------------------

def test_razorpay_valid_signature_agrees_with_the_sdk():
    signature = razorpay_webhook_signature(RZP_SECRET, RAZORPAY_BODY)
    razorpay.Utility(None).verify_webhook_signature(RAZORPAY_BODY.decode(), signature, RZP_SECRET)  # raises if wrong
    assert verify_razorpay(RAZORPAY_BODY, [signature], (RZP_SECRET,))
    assert verify_razorpay(RAZORPAY_BODY, [signature.upper()], (RZP_SECRET,))  # hex case does not matter


def test_razorpay_rotation_accepts_every_configured_secret():
    old, new = "old-webhook-secret", "new-webhook-secret"
    for secret in (old, new):
        assert verify_razorpay(RAZORPAY_BODY, [razorpay_webhook_signature(secret, RAZORPAY_BODY)], (new, old))
    retired = razorpay_webhook_signature("retired-secret", RAZORPAY_BODY)
    assert not verify_razorpay(RAZORPAY_BODY, [retired], (new, old))


def test_razorpay_tampered_body_is_refused():
    signature = razorpay_webhook_signature(RZP_SECRET, RAZORPAY_BODY)
    tampered = RAZORPAY_BODY.replace(b'"amount":177000', b'"amount":100')
    assert tampered != RAZORPAY_BODY
    assert not verify_razorpay(tampered, [signature], (RZP_SECRET,))
    # re-serialised JSON (what a framework's parsed body would give) is other bytes: refused too
    import json
    reserialised = json.dumps(json.loads(RAZORPAY_BODY), separators=(",", ":")).encode()
    assert not verify_razorpay(reserialised, [signature], (RZP_SECRET,))
    assert not verify_razorpay(RAZORPAY_BODY + b"\n", [signature], (RZP_SECRET,))


@pytest.mark.parametrize("signatures", [
    [],
    [""],
    ["not-hex"],
    [razorpay_webhook_signature("forged-secret", RAZORPAY_BODY)],
    [razorpay_webhook_signature(RZP_SECRET, RAZORPAY_BODY)[:-1]],
    ["é" * 64],
    ["a" * 5000],
])
def test_razorpay_forged_or_missing_signature_is_refused(signatures):
    assert not verify_razorpay(RAZORPAY_BODY, signatures, (RZP_SECRET,))


def test_razorpay_without_secrets_refuses_everything():
    assert not verify_razorpay(RAZORPAY_BODY, [razorpay_webhook_signature("", RAZORPAY_BODY)], ())
    assert not verify_razorpay(RAZORPAY_BODY, [razorpay_webhook_signature("", RAZORPAY_BODY)], ("",))


# ---- Stripe -----------------------------------------------------------------------------------

def test_stripe_valid_signature_agrees_with_the_sdk():
    now = int(time.time())
    header = stripe_signature_header([STRIPE_SECRET], STRIPE_BODY, now)
    event = stripe.Webhook.construct_event(STRIPE_BODY, header, STRIPE_SECRET)  # raises if wrong
    assert event["id"] == "evt_1Test"
    assert verify_stripe(STRIPE_BODY, header, (STRIPE_SECRET,), now=now)


def test_stripe_several_v1_during_rotation():
    now = int(time.time())
    old, new = "whsec_old", "whsec_new"
    header = stripe_signature_header([old, new], STRIPE_BODY, now)  # Stripe signs with both while rolling
    assert header.count("v1=") == 2
    assert verify_stripe(STRIPE_BODY, header, (new,), now=now)  # the new secret matches the second v1
    assert verify_stripe(STRIPE_BODY, header, (old,), now=now)  # the old one the first
    assert verify_stripe(STRIPE_BODY, stripe_signature_header([old], STRIPE_BODY, now), (new, old), now=now)
    assert not verify_stripe(STRIPE_BODY, header, ("whsec_other",), now=now)


def test_stripe_unknown_schemes_and_order_do_not_matter():
    now = int(time.time())
    good = stripe_signature_header([STRIPE_SECRET], STRIPE_BODY, now).split(",")[1]
    header = f"v0=deadbeef,{good},t={now},v1=00"
    assert verify_stripe(STRIPE_BODY, header, (STRIPE_SECRET,), now=now)
    assert parse_stripe_header(header) == (now, [good[3:], "00"])
    # a v0 signature (Stripe's test scheme) is never accepted in place of v1
    v0_only = f"t={now},v0={good[3:]}"
    assert not verify_stripe(STRIPE_BODY, v0_only, (STRIPE_SECRET,), now=now)


def test_stripe_tolerance_is_300_seconds():
    now = int(time.time())
    for age, valid in ((0, True), (299, True), (300, True), (301, False), (3600, False)):
        header = stripe_signature_header([STRIPE_SECRET], STRIPE_BODY, now - age)
        assert verify_stripe(STRIPE_BODY, header, (STRIPE_SECRET,), now=now) is valid, age
    # the SDK agrees about a too-old one
    old = stripe_signature_header([STRIPE_SECRET], STRIPE_BODY, now - 301)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(STRIPE_BODY, old, STRIPE_SECRET, tolerance=300)
    # a timestamp far in the future is refused too (it would stretch the replay window)
    future = stripe_signature_header([STRIPE_SECRET], STRIPE_BODY, now + 3600)
    assert not verify_stripe(STRIPE_BODY, future, (STRIPE_SECRET,), now=now)
    assert verify_stripe(STRIPE_BODY, old, (STRIPE_SECRET,), now=now, tolerance_s=600)


def test_stripe_tampered_body_or_timestamp_is_refused():
    now = int(time.time())
    header = stripe_signature_header([STRIPE_SECRET], STRIPE_BODY, now)
    assert not verify_stripe(STRIPE_BODY.replace(b"pi_1Test", b"pi_2Test"), header, (STRIPE_SECRET,), now=now)
    moved = header.replace(f"t={now}", f"t={now - 1}")  # the signature covers t as well
    assert not verify_stripe(STRIPE_BODY, moved, (STRIPE_SECRET,), now=now)


@pytest.mark.parametrize("header", [
    "",
    "garbage",
    "t=abc,v1=00",
    "v1=" + "0" * 64,  # no timestamp
    "t={now}",  # no signature
    "t={now},v1=",
    "t={now},v1=" + "0" * 64,
    "t={now},v1=" + "a" * 5000,
])
def test_stripe_forged_or_malformed_headers_are_refused(header):
    now = int(time.time())
    assert not verify_stripe(STRIPE_BODY, header.format(now=now), (STRIPE_SECRET,), now=now)


def test_stripe_forged_with_another_secret_is_refused_by_us_and_the_sdk():
    now = int(time.time())
    forged = stripe_signature_header(["whsec_attacker"], STRIPE_BODY, now)
    assert not verify_stripe(STRIPE_BODY, forged, (STRIPE_SECRET,), now=now)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(STRIPE_BODY, forged, STRIPE_SECRET)
