"""Webhook hardening (issue 11, item 6), over real gRPC against real PostgreSQL: a Razorpay event
replayed under a new X-Razorpay-Event-Id is a duplicate (its payment id and type were applied);
events older than WEBHOOK_MAX_AGE are acknowledged and ignored, audited with the reason; signed
events we cannot represent (absurd amount, control characters, wrong types, nesting too deep)
are acknowledged as ignored with the reason, never a 5xx the gateway would retry forever."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import pytest

from gateway_emulator.signing import razorpay_webhook_signature, stripe_signature_header
from tests.support.payments import audit_rows, events, new_order_token, open_session, payment_row
from tests.support.tokens import new_user
from tests.support.webhooks import eventually, http_body, settled, stored_event, webhook_audit

RAZORPAY_SECRET, STRIPE_SECRET = "dev-webhook-secret", "dev-stripe-webhook-secret"
DAY = 24 * 3600


def razorpay_metadata(body: bytes, event_id: str | None = None) -> tuple[tuple[str, str], ...]:
    return (("x-razorpay-signature", razorpay_webhook_signature(RAZORPAY_SECRET, body)),
            ("x-razorpay-event-id", event_id or f"evt_{uuid.uuid4().hex[:14]}"))


def razorpay_capture(order_id: str, *, payment_id: str = "", amount: object = 177000, currency: object = "INR",
                     event: object = "payment.captured", created_at: object = None) -> bytes:
    return json.dumps({
        "entity": "event", "account_id": "acc_EmulatorDev001", "event": event, "contains": ["payment"],
        "payload": {"payment": {"entity": {"id": payment_id or f"pay_{uuid.uuid4().hex[:14]}", "entity": "payment",
                                           "amount": amount, "currency": currency, "status": "captured",
                                           "order_id": order_id, "method": "upi", "captured": True}}},
        "created_at": int(time.time()) if created_at is None else created_at}).encode()


async def webhook_rows(engine, gateway: str, event_id: str) -> list:
    return [row for row in await audit_rows(engine, f"{gateway}:{event_id}")]


async def test_a_razorpay_event_replayed_under_a_new_event_id_has_no_second_effect(hooks, engine):
    order = new_order_token()
    session = await open_session(hooks, order, new_user())
    await asyncio.to_thread(hooks.emulator.pay, session.gateway_order_id)
    await settled(hooks.emulator, session.gateway_order_id, 2)
    delivered = next(d for d in hooks.receiver.of("payment.captured") if d.status == 200
                     and json.loads(d.body)["payload"]["payment"]["entity"]["order_id"] == session.gateway_order_id)
    assert (await payment_row(engine, session.payment_token)).status == "captured"

    replay_id = f"evt_replay{uuid.uuid4().hex[:10]}"
    ack = await hooks.payments.RazorpayWebhook(http_body(delivered.body), metadata=delivered.metadata(
        x_razorpay_event_id=replay_id))

    assert ack.received and ack.duplicate and ack.event_id == replay_id
    assert len(await events(engine, order, "checkout.payment.captured")) == 1  # no second effect
    [audit] = await webhook_rows(engine, "razorpay", replay_id)
    assert audit.action == "webhook:duplicate" and audit.after["applied_as"] == delivered.event_id
    assert audit.after["subject"] == f"{json.loads(delivered.body)['payload']['payment']['entity']['id']}:payment.captured"
    assert await stored_event(engine, "razorpay", replay_id) is None  # nothing stored for the replay


async def test_a_new_event_id_for_a_payment_never_applied_is_applied(hooks, engine):
    """The subject is (payment id, event type): another payment of the same order is news."""
    order = new_order_token()
    session = await open_session(hooks, order, new_user())
    body = razorpay_capture(session.gateway_order_id, amount=177000)
    first = await hooks.payments.RazorpayWebhook(http_body(body), metadata=razorpay_metadata(body))
    assert not first.duplicate and await webhook_audit(engine, "razorpay", first.event_id) == ["status:captured"]
    other = razorpay_capture(session.gateway_order_id, amount=177000)  # a second payment: flagged, not a duplicate
    second = await hooks.payments.RazorpayWebhook(http_body(other), metadata=razorpay_metadata(other))
    assert not second.duplicate and await webhook_audit(engine, "razorpay", second.event_id) == ["webhook:flagged"]


@pytest.mark.parametrize("gateway", ["razorpay", "stripe"])
async def test_an_event_older_than_the_window_is_acknowledged_and_ignored(hooks, engine, gateway):
    currency, amount = ("INR", "1770.00") if gateway == "razorpay" else ("USD", "50.00")
    order = new_order_token()
    session = await open_session(hooks, order, new_user(), gateway="" if gateway == "razorpay" else gateway,
                                 amount=amount, currency=currency)
    created = int(time.time()) - 3 * DAY - 3600  # 73 hours ago: past the default 72 h
    if gateway == "razorpay":
        body = razorpay_capture(session.gateway_order_id, created_at=created)
        ack = await hooks.payments.RazorpayWebhook(http_body(body), metadata=razorpay_metadata(body))
    else:
        body = json.dumps({"id": f"evt_{uuid.uuid4().hex[:14]}", "object": "event", "type": "payment_intent.succeeded",
                           "created": created, "data": {"object": {
                               "id": session.gateway_order_id, "object": "payment_intent", "amount": 5000,
                               "amount_received": 5000, "currency": "usd", "status": "succeeded"}}}).encode()
        header = stripe_signature_header([STRIPE_SECRET], body, int(time.time()))  # signed now: only the event is old
        ack = await hooks.payments.StripeWebhook(http_body(body), metadata=(("stripe-signature", header),))

    assert ack.received and not ack.duplicate
    row = await stored_event(engine, gateway, ack.event_id)
    assert row.status == "ignored" and row.error == "the event is 73 h old, past the 72 h window"
    [audit] = await webhook_rows(engine, gateway, ack.event_id)
    assert (audit.action, audit.after["reason"], audit.after["created_at"]) == (
        "webhook:ignored", "the event is 73 h old, past the 72 h window", created)
    assert (await payment_row(engine, session.payment_token)).status == "pending"
    assert await events(engine, order, "checkout.payment.captured") == []


def absurd_bodies(order_id: str) -> dict[str, bytes]:
    return {
        "absurd amount": razorpay_capture(order_id, amount=10**30),
        "amount past a session": razorpay_capture(order_id, amount=10**12),
        "negative amount": razorpay_capture(order_id, amount=-1),
        "amount as text": razorpay_capture(order_id, amount="177000"),
        "amount as float": razorpay_capture(order_id, amount=1770.0),
        "currency as number": razorpay_capture(order_id, currency=356),
        "control character in the type": razorpay_capture(order_id, event="payment.captured\u0000"),
        "control character in the id": razorpay_capture(order_id, payment_id="pay_\u0000x"),
        "type as list": razorpay_capture(order_id, event=["payment.captured"]),
        "created_at as text": razorpay_capture(order_id, created_at="yesterday"),
        "nested too deep": b'{"event": "payment.captured", "payload": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        "lone surrogate": razorpay_capture(order_id, payment_id="pay_\ud800"),
    }


async def test_signed_events_we_cannot_represent_are_acknowledged_as_ignored_with_a_reason(hooks, engine):
    order = new_order_token()
    session = await open_session(hooks, order, new_user())
    for name, body in absurd_bodies(session.gateway_order_id).items():
        ack = await hooks.payments.RazorpayWebhook(http_body(body), metadata=razorpay_metadata(body))
        assert ack.received and not ack.duplicate, name
        row = await stored_event(engine, "razorpay", ack.event_id)
        if name == "created_at as text":  # no usable time: judged by the rest, a real capture
            assert row.status == "processed", name
            assert await webhook_audit(engine, "razorpay", ack.event_id) == ["status:captured"], name
            continue
        [audit] = await webhook_rows(engine, "razorpay", ack.event_id)
        assert row.status == "ignored" and row.error, name
        assert audit.action == "webhook:ignored" and audit.after["reason"] == row.error, name
        assert "\x00" not in row.event_type, name
    assert len(await events(engine, order, "checkout.payment.captured")) == 1  # only the readable one


async def test_the_default_window_is_three_days(hooks):
    assert hooks.settings.webhook_max_age == 3 * DAY


async def test_a_duplicate_under_a_new_id_arriving_at_once_is_applied_once(hooks, engine):
    order = new_order_token()
    session = await open_session(hooks, order, new_user())
    body = razorpay_capture(session.gateway_order_id)
    acks = await asyncio.gather(*(hooks.payments.RazorpayWebhook(http_body(body), metadata=razorpay_metadata(body))
                                  for _ in range(5)))
    assert sorted(a.duplicate for a in acks) == [False, True, True, True, True]
    await eventually(lambda: events(engine, order, "checkout.payment.captured"), what="the capture")
    assert len(await events(engine, order, "checkout.payment.captured")) == 1
