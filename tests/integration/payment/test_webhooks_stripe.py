"""Stripe webhooks through PaymentService.StripeWebhook over real gRPC, delivered by the real
gateway emulator (Stripe's pretty-printed UTF-8 events and Stripe-Signature scheme, re-signed
with a fresh timestamp on every attempt) via a receiver that acts as the edge does."""

from __future__ import annotations

import asyncio
import json
import time

import httpx

from gateway_emulator.signing import stripe_signature_header
from payment_svc.tables import PLUMBING, webhook_events
from payment_svc.tuning import WebhookTuning
from tests.support.payments import (
    api_requests,
    audit_rows,
    captured_once,
    count_rows,
    events,
    fails_with,
    new_order_token,
    open_session,
    payment_row,
)
from tests.support.tokens import new_user
from tests.support.webhooks import (
    eventually,
    http_body,
    settled,
    signature_failures,
    stored_event,
    webhook_audit,
    webhook_handler,
)

outbox = PLUMBING.outbox
SECRET = "dev-stripe-webhook-secret"


async def stripe_session(hooks, engine, user: str, *, total: str = "50.00", currency: str = "USD"):
    order = new_order_token()
    session = await open_session(hooks, order, user, gateway="stripe", amount=total, currency=currency)
    assert session.gateway == "stripe" and session.gateway_order_id.startswith("cs_")
    return order, session


async def test_completed_captures_and_the_intent_event_changes_nothing(hooks, engine):
    user = new_user()
    order, session = await stripe_session(hooks, engine, user)
    paid = await asyncio.to_thread(hooks.emulator.pay, session.gateway_order_id)
    intent = paid["payment"]["id"]
    calls_after_pay = len(api_requests(hooks.emulator))
    completed, succeeded = await settled(hooks.emulator, session.gateway_order_id, 2)

    assert (completed["event"], succeeded["event"]) == ("checkout.session.completed", "payment_intent.succeeded")
    assert completed["state"] == succeeded["state"] == "delivered"
    payment = await payment_row(engine, session.payment_token)
    assert payment.status == "captured" and payment.gateway_payment_id == intent and intent.startswith("pi_")
    captured = await captured_once(engine, order)
    assert captured.pop("occurred_at").endswith("Z")
    assert captured == {"order_token": order, "payment_token": session.payment_token, "user_id": user, "attempt": 1,
                        "amount": "50.00", "currency": "USD", "gateway": "stripe", "status": "captured",
                        "gateway_order_id": session.gateway_order_id, "gateway_payment_id": intent,
                        "source": "webhook", "reason": "", "expires_at": session.expires_at, "checkout_url": ""}
    assert len(api_requests(hooks.emulator)) == calls_after_pay  # no Stripe look-up to act on them
    first, second = hooks.receiver.deliveries
    assert first.event_id == completed["id"] and first.body.startswith(b"{\n  ")  # Stripe's pretty-printed bytes
    assert second.answer == {"received": True, "duplicate": False, "event_id": succeeded["id"]}
    row = await stored_event(engine, "stripe", completed["id"])
    assert (row.status, row.event_type, row.body) == ("processed", "checkout.session.completed", first.body)
    assert await webhook_audit(engine, "stripe", completed["id"]) == ["status:captured"]
    assert await webhook_audit(engine, "stripe", succeeded["id"]) == ["webhook:duplicate"]  # the same payment


async def test_the_intent_event_first_finds_the_session_by_its_metadata(hooks, engine):
    user = new_user()
    order, session = await stripe_session(hooks, engine, user)
    hooks.emulator.set_faults("stripe", webhook_reorder=True)
    paid = await asyncio.to_thread(hooks.emulator.pay, session.gateway_order_id)
    sent = await settled(hooks.emulator, session.gateway_order_id, 2)

    assert [d.event_type for d in hooks.receiver.deliveries] == ["payment_intent.succeeded",
                                                                 "checkout.session.completed"]
    assert paid["payment"]["metadata"]["payment_token"] == session.payment_token
    assert (await payment_row(engine, session.payment_token)).gateway_payment_id == paid["payment"]["id"]
    await captured_once(engine, order)
    by_type = {e["event"]: e["id"] for e in sent}
    assert await webhook_audit(engine, "stripe", by_type["payment_intent.succeeded"]) == ["status:captured"]
    assert await webhook_audit(engine, "stripe", by_type["checkout.session.completed"]) == ["webhook:duplicate"]


async def test_the_same_event_five_times_captures_once(hooks, engine):
    user = new_user()
    order, session = await stripe_session(hooks, engine, user)
    hooks.emulator.set_faults("stripe", webhook_duplicate=5)
    paid_from = int(time.time())
    await asyncio.to_thread(hooks.emulator.pay, session.gateway_order_id)
    await eventually(lambda: _answered(hooks, 10), what="5 deliveries of each of 2 events")

    deliveries = hooks.receiver.of("checkout.session.completed")
    assert len(deliveries) == 5
    assert len({d.event_id for d in deliveries}) == 1 and len({d.body for d in deliveries}) == 1  # byte for byte
    for delivery in deliveries:  # each copy carries a genuine signature, made when it was sent
        header = delivery.headers["stripe-signature"]
        signed_at = int(header.split(",")[0].removeprefix("t="))
        assert paid_from <= signed_at <= time.time(), header
        assert header == stripe_signature_header([SECRET], delivery.body, signed_at), header
    assert [d.status for d in deliveries] == [200] * 5
    assert [d.answer["duplicate"] for d in deliveries] == [False, True, True, True, True]
    assert len(await events(engine, order, "checkout.payment.captured")) == 1
    assert await count_rows(engine, webhook_events, webhook_events.c.event_id == deliveries[0].event_id) == 1
    assert await webhook_audit(engine, "stripe", deliveries[0].event_id) == (
        ["status:captured"] + ["webhook:duplicate"] * 4)


async def _answered(hooks, count: int) -> bool:
    return len(hooks.receiver.deliveries) >= count and all(d.status for d in hooks.receiver.deliveries)


async def test_failed_then_succeeded_and_a_stale_failure_after_the_capture(hooks, engine):
    user = new_user()
    order, session = await stripe_session(hooks, engine, user)
    failed = await asyncio.to_thread(hooks.emulator.fail, session.gateway_order_id)
    [sent] = await settled(hooks.emulator, session.gateway_order_id, 1)
    assert sent["event"] == "payment_intent.payment_failed"
    assert (await payment_row(engine, session.payment_token)).status == "failed"
    assert len(await events(engine, order, "checkout.payment.failed")) == 1

    paid = await asyncio.to_thread(hooks.emulator.pay, session.gateway_order_id)  # the card is retried
    await settled(hooks.emulator, session.gateway_order_id, 3)
    assert paid["payment"]["id"] == failed["payment"]["id"]  # one PaymentIntent per Checkout Session
    assert (await payment_row(engine, session.payment_token)).status == "captured"
    await captured_once(engine, order)

    # Stripe resends the old payment_failed event after the success (no ordering guarantee)
    [failed_id] = failed["webhook_event_ids"]
    hooks.emulator.control("POST", f"webhooks/{failed_id}/redeliver")
    await eventually(lambda: _answered(hooks, 4), what="the redelivery")
    assert hooks.receiver.deliveries[-1].answer["duplicate"] is True
    assert (await payment_row(engine, session.payment_token)).status == "captured"
    await captured_once(engine, order)
    assert len(await events(engine, order, "checkout.payment.captured")) == 1


async def test_a_failure_delivered_after_the_success_is_ignored(hooks, engine):
    user = new_user()
    order, session = await stripe_session(hooks, engine, user)
    hooks.emulator.set_faults("stripe", webhook_hold=True)
    failed = await asyncio.to_thread(hooks.emulator.fail, session.gateway_order_id)
    paid = await asyncio.to_thread(hooks.emulator.pay, session.gateway_order_id)
    for event_id in (paid["webhook_event_ids"][0], failed["webhook_event_ids"][0]):
        hooks.emulator.control("POST", f"webhooks/{event_id}/redeliver")
        await eventually(lambda event_id=event_id: _delivered(hooks, event_id), what=event_id)

    assert (await payment_row(engine, session.payment_token)).status == "captured"
    await captured_once(engine, order)
    assert await events(engine, order, "checkout.payment.failed") == []
    assert await webhook_audit(engine, "stripe", failed["webhook_event_ids"][0]) == ["webhook:ignored"]


async def test_an_expired_checkout_session_fails_the_session(hooks, engine):
    user = new_user()
    order, session = await stripe_session(hooks, engine, user)
    async with httpx.AsyncClient(base_url=hooks.emulator.url, headers={"Authorization": "Bearer sk_test_dev"}) as api:
        expired = await api.post(f"/v1/checkout/sessions/{session.gateway_order_id}/expire")
    assert expired.status_code == 200 and expired.json()["status"] == "expired"
    [sent] = await settled(hooks.emulator, session.gateway_order_id, 1)

    assert sent["event"] == "checkout.session.expired"
    assert (await payment_row(engine, session.payment_token)).status == "failed"
    [failed] = await events(engine, order, "checkout.payment.failed")
    assert (failed["gateway_order_id"], failed["source"]) == (session.gateway_order_id, "webhook")


async def _delivered(hooks, event_id: str) -> bool:
    return any(d.event_id == event_id and d.status == 200 for d in hooks.receiver.deliveries)


async def test_forged_tampered_and_stale_signatures_are_3101_and_store_nothing(hooks, engine):
    user = new_user()
    order, session = await stripe_session(hooks, engine, user)
    hooks.receiver.forward = False
    await asyncio.to_thread(hooks.emulator.pay, session.gateway_order_id)
    await settled(hooks.emulator, session.gateway_order_id, 2)
    [genuine] = hooks.receiver.of("checkout.session.completed")
    outbox_before = await count_rows(engine, outbox, outbox.c.aggregate_id == order)
    refused_before = signature_failures("stripe")
    now = int(time.time())

    tampered = genuine.body.replace(b'"amount_total": 5000', b'"amount_total": 1')
    assert tampered != genuine.body
    attempts = [
        (tampered, genuine.metadata()),
        (genuine.body, genuine.metadata(stripe_signature=stripe_signature_header(["whsec_forged"], genuine.body, now))),
        (genuine.body, genuine.metadata(stripe_signature=None)),
        (genuine.body, genuine.metadata(stripe_signature=stripe_signature_header([SECRET], genuine.body, now - 301))),
        (genuine.body, genuine.metadata(stripe_signature=f"t={now}")),
    ]
    for body, metadata in attempts:
        await fails_with(hooks.payments.StripeWebhook(http_body(body), metadata=metadata), 3101)

    assert signature_failures("stripe") - refused_before == len(attempts)
    assert await stored_event(engine, "stripe", genuine.event_id) is None
    assert (await payment_row(engine, session.payment_token)).status == "pending"
    assert await count_rows(engine, outbox, outbox.c.aggregate_id == order) == outbox_before

    # the genuine delivery, and a resend signed again with two secrets (Stripe rolling the secret)
    ack = await hooks.payments.StripeWebhook(http_body(genuine.body), metadata=genuine.metadata())
    assert ack.received and not ack.duplicate and ack.event_id == genuine.event_id
    rolled = stripe_signature_header(["whsec_next", SECRET], genuine.body, now)
    again = await hooks.payments.StripeWebhook(http_body(genuine.body), metadata=genuine.metadata(stripe_signature=rolled))
    assert again.duplicate
    await captured_once(engine, order)


async def test_amount_mismatch_is_acknowledged_flagged_and_not_paid(hooks, engine):
    user = new_user()
    order, session = await stripe_session(hooks, engine, user)
    await asyncio.to_thread(hooks.emulator.pay, session.gateway_order_id, amount=4900)
    sent = await settled(hooks.emulator, session.gateway_order_id, 2)

    assert [(e["state"], len(e["attempts"])) for e in sent] == [("delivered", 1)] * 2
    assert (await payment_row(engine, session.payment_token)).status == "pending"
    assert len(await events(engine, order, "checkout.payment.flagged")) == 2  # the session's event and the intent's
    assert await events(engine, order, "checkout.payment.captured") == []
    flagged = [r for r in await audit_rows(engine, session.payment_token) if r.flagged]
    assert [(r.after["reported_amount"], r.after["expected_amount"]) for r in flagged] == [("49.00", "50.00")] * 2
    assert [await webhook_audit(engine, "stripe", e["id"]) for e in sent] == [["webhook:flagged"]] * 2


async def test_a_currency_mismatch_is_flagged_too(hooks, engine):
    user = new_user()
    order, session = await stripe_session(hooks, engine, user)
    await asyncio.to_thread(hooks.emulator.pay, session.gateway_order_id, currency="EUR")
    sent = await settled(hooks.emulator, session.gateway_order_id, 2)
    assert await events(engine, order, "checkout.payment.captured") == []
    assert [await webhook_audit(engine, "stripe", e["id"]) for e in sent] == [["webhook:flagged"]] * 2


async def test_events_we_do_not_act_on_are_ignored(hooks, engine):
    body = json.dumps({"id": f"evt_{new_user()[:12]}", "object": "event", "type": "charge.refunded",
                       "data": {"object": {"id": "ch_1", "object": "charge"}}}, indent=2).encode()
    header = stripe_signature_header([SECRET], body, int(time.time()))
    ack = await hooks.payments.StripeWebhook(http_body(body), metadata=(("stripe-signature", header),))
    assert ack.received and not ack.duplicate
    row = await stored_event(engine, "stripe", ack.event_id)
    assert (row.status, row.event_type) == ("ignored", "charge.refunded")
    assert await webhook_audit(engine, "stripe", ack.event_id) == ["webhook:ignored"]


async def test_the_timestamp_tolerance_is_configurable(engine):
    body = json.dumps({"id": f"evt_{new_user()[:12]}", "type": "customer.created", "data": {"object": {}}}).encode()
    handler = webhook_handler(engine, WebhookTuning(razorpay_secrets=(), stripe_secrets=(SECRET,), stripe_tolerance_s=600),
                              clock=lambda: 2_000_000_500.0)
    ack = await handler.stripe(body, {"stripe-signature": [stripe_signature_header([SECRET], body, 2_000_000_000)]})
    assert ack.verdict == "ignored"
