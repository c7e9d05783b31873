"""Razorpay webhooks through PaymentService.RazorpayWebhook over real gRPC, delivered by the real
gateway emulator (Razorpay's exact bytes, headers, retries, duplicates and reordering) via a
receiver that hands the raw body and headers to the RPC as the edge does."""

from __future__ import annotations

import asyncio
import json

from sqlalchemy import text

from checkout.v1 import payment_pb2
from gateway_emulator.signing import razorpay_webhook_signature
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
from tests.support.tokens import bearer, new_user
from tests.support.webhooks import (
    eventually,
    http_body,
    settled,
    signature_failures,
    stored_event,
    webhook_audit,
    webhook_count,
    webhook_handler,
)

outbox = PLUMBING.outbox


async def razorpay_session(hooks, engine, user: str):
    order = new_order_token()
    session = await open_session(hooks, order, user)
    return order, session


async def pay(hooks, gateway_order_id: str, **options):
    return await asyncio.to_thread(hooks.emulator.pay, gateway_order_id, **options)


async def test_webhook_captures_pays_and_emits_one_event(hooks, engine):
    user = new_user()
    order, session = await razorpay_session(hooks, engine, user)
    outcome = await pay(hooks, session.gateway_order_id)
    calls_after_pay = len(api_requests(hooks.emulator))
    sent = await settled(hooks.emulator, session.gateway_order_id, 2)

    assert [e["state"] for e in sent] == ["delivered", "delivered"]
    payment = await payment_row(engine, session.payment_token)
    assert payment.status == "captured" and payment.gateway_payment_id == outcome["payment"]["id"]
    captured = await captured_once(engine, order)
    assert captured.pop("occurred_at").endswith("Z")
    assert captured == {"order_token": order, "payment_token": session.payment_token, "user_id": user, "attempt": 1,
                        "amount": "1770.00", "currency": "INR", "gateway": "razorpay", "status": "captured",
                        "gateway_order_id": session.gateway_order_id, "gateway_payment_id": outcome["payment"]["id"],
                        "source": "webhook", "reason": "", "expires_at": session.expires_at, "checkout_url": ""}
    # the signed webhook is Razorpay's own word: no call back to the gateway to act on it
    assert len(api_requests(hooks.emulator)) == calls_after_pay

    captured_event, paid_event = hooks.receiver.of("payment.captured")[0], hooks.receiver.of("order.paid")[0]
    assert captured_event.answer == {"received": True, "duplicate": False, "event_id": captured_event.event_id}
    for delivery, verdict in ((captured_event, "status:captured"), (paid_event, "webhook:duplicate")):
        row = await stored_event(engine, "razorpay", delivery.event_id)
        assert row.status == "processed" and row.body == delivery.body and row.event_type == delivery.event_type
        assert row.processed_at is not None and row.error is None
        assert await webhook_audit(engine, "razorpay", delivery.event_id) == [verdict]


async def test_the_same_event_five_times_captures_once(hooks, engine):
    user = new_user()
    order, session = await razorpay_session(hooks, engine, user)
    hooks.emulator.set_faults("razorpay", webhook_duplicate=5)
    duplicates_before = webhook_count("razorpay", "duplicate")
    await pay(hooks, session.gateway_order_id)
    await eventually(lambda: _done(hooks, 10), what="10 deliveries")
    sent = await settled(hooks.emulator, session.gateway_order_id, 2)

    captured = hooks.receiver.of("payment.captured")
    assert len(captured) == 5 and len({d.event_id for d in captured}) == 1
    assert [d.status for d in captured] == [200] * 5  # every copy acknowledged, so Razorpay stops
    assert [d.answer["duplicate"] for d in captured] == [False, True, True, True, True]
    assert all(len(e["attempts"]) == 5 for e in sent)
    await captured_once(engine, order)
    assert len(await events(engine, order, "checkout.payment.captured")) == 1
    assert await count_rows(engine, webhook_events, webhook_events.c.event_id == captured[0].event_id) == 1
    assert await webhook_audit(engine, "razorpay", captured[0].event_id) == ["status:captured"] + ["webhook:duplicate"] * 4
    assert webhook_count("razorpay", "duplicate") - duplicates_before == 9  # 4 + order.paid's 1 + 4


async def _done(hooks, count: int) -> bool:
    return len(hooks.receiver.deliveries) >= count and all(d.status for d in hooks.receiver.deliveries)


async def test_order_paid_after_the_capture_is_a_duplicate_without_the_sessions_row_lock(hooks, engine):
    """A captured session is final, so Razorpay's order.paid that follows payment.captured needs no
    lock to be judged: it is stored and audited as the usual way would, even while the session's
    row is locked for longer than a webhook may wait."""
    user = new_user()
    order, session = await razorpay_session(hooks, engine, user)
    hooks.receiver.forward = False  # record what Razorpay sends; delivered below, one at a time
    outcome = await pay(hooks, session.gateway_order_id)
    await settled(hooks.emulator, session.gateway_order_id, 2)
    captured_event, paid_event = hooks.receiver.of("payment.captured")[0], hooks.receiver.of("order.paid")[0]
    await hooks.payments.RazorpayWebhook(http_body(captured_event.body), metadata=captured_event.metadata())
    async with engine.connect() as blocker:
        await blocker.execute(text("SELECT 1 FROM payment_sessions WHERE token = :t FOR UPDATE"),
                              {"t": session.payment_token})
        ack = await hooks.payments.RazorpayWebhook(http_body(paid_event.body), metadata=paid_event.metadata())
        await blocker.rollback()

    assert ack.received and not ack.duplicate and ack.event_id == paid_event.event_id
    row = await stored_event(engine, "razorpay", paid_event.event_id)
    assert row.status == "processed" and row.body == paid_event.body and row.event_type == "order.paid"
    assert row.processed_at is not None and row.error is None
    [audit] = [a for a in await audit_rows(engine, f"razorpay:{paid_event.event_id}")]
    created_at = json.loads(paid_event.body)["created_at"]
    assert audit.action == "webhook:duplicate" and audit.after == {
        "event_type": "order.paid", "subject": f"{outcome['payment']['id']}:order.paid", "created_at": created_at,
        "gateway_order_id": session.gateway_order_id,
        "gateway_payment_id": outcome["payment"]["id"], "reported_status": "captured", "amount_minor": 177000,
        "currency": "INR", "outcome": "duplicate", "changed": False, "payment_token": session.payment_token,
        "order_token": order}
    assert len(await events(engine, order, "checkout.payment.captured")) == 1
    again = await hooks.payments.RazorpayWebhook(http_body(paid_event.body), metadata=paid_event.metadata())
    assert again.duplicate  # a repeat of it is a repeat, as before


async def test_reordered_events_order_paid_first(hooks, engine):
    user = new_user()
    order, session = await razorpay_session(hooks, engine, user)
    hooks.emulator.set_faults("razorpay", webhook_reorder=True)
    outcome = await pay(hooks, session.gateway_order_id)
    await settled(hooks.emulator, session.gateway_order_id, 2)

    assert [d.event_type for d in hooks.receiver.deliveries] == ["order.paid", "payment.captured"]
    await captured_once(engine, order)
    [captured] = await events(engine, order, "checkout.payment.captured")
    assert captured["gateway_payment_id"] == outcome["payment"]["id"]
    first, second = hooks.receiver.deliveries
    assert await webhook_audit(engine, "razorpay", first.event_id) == ["status:captured"]
    assert await webhook_audit(engine, "razorpay", second.event_id) == ["webhook:duplicate"]


async def test_a_failure_delivered_after_the_capture_does_not_undo_it(hooks, engine):
    """Attempt 1 fails, attempt 2 is captured; Razorpay delivers payment.failed last."""
    user = new_user()
    order, session = await razorpay_session(hooks, engine, user)
    hooks.emulator.set_faults("razorpay", webhook_hold=True)
    failed = await asyncio.to_thread(hooks.emulator.fail, session.gateway_order_id)
    paid = await pay(hooks, session.gateway_order_id)
    [failed_event] = failed["webhook_event_ids"]
    captured_event, order_paid_event = paid["webhook_event_ids"]

    for event_id in (order_paid_event, captured_event, failed_event):  # newest news first, the failure last
        hooks.emulator.control("POST", f"webhooks/{event_id}/redeliver")
        await eventually(lambda event_id=event_id: _answered(hooks, event_id), what=f"delivery of {event_id}")

    assert (await payment_row(engine, session.payment_token)).status == "captured"
    await captured_once(engine, order)
    assert len(await events(engine, order, "checkout.payment.captured")) == 1
    assert await events(engine, order, "checkout.payment.failed") == []
    assert await webhook_audit(engine, "razorpay", failed_event) == ["webhook:ignored"]
    assert (await stored_event(engine, "razorpay", failed_event)).status == "processed"


async def _answered(hooks, event_id: str) -> bool:
    return any(d.event_id == event_id and d.status for d in hooks.receiver.deliveries)


async def test_failure_then_capture_in_order(hooks, engine):
    user = new_user()
    order, session = await razorpay_session(hooks, engine, user)
    await asyncio.to_thread(hooks.emulator.fail, session.gateway_order_id)
    await settled(hooks.emulator, session.gateway_order_id, 1)
    assert (await payment_row(engine, session.payment_token)).status == "failed"
    assert len(await events(engine, order, "checkout.payment.failed")) == 1

    await pay(hooks, session.gateway_order_id)  # the customer tries again on the same Razorpay order
    await settled(hooks.emulator, session.gateway_order_id, 3)
    assert (await payment_row(engine, session.payment_token)).status == "captured"
    await captured_once(engine, order)
    assert len(await events(engine, order, "checkout.payment.captured")) == 1


async def test_forged_and_tampered_webhooks_are_3101_and_store_nothing(hooks, engine):
    user = new_user()
    order, session = await razorpay_session(hooks, engine, user)
    hooks.receiver.forward = False  # record what Razorpay sends, do not apply it yet
    await pay(hooks, session.gateway_order_id)
    await settled(hooks.emulator, session.gateway_order_id, 2)
    genuine = hooks.receiver.of("payment.captured")[0]
    outbox_before = await count_rows(engine, outbox, outbox.c.aggregate_id == order)
    refused_before = signature_failures("razorpay")

    tampered = genuine.body.replace(b'"amount":177000', b'"amount":100')
    assert tampered != genuine.body
    attempts = [
        (tampered, genuine.metadata()),  # the body changed, the signature did not
        (genuine.body, genuine.metadata(x_razorpay_signature=razorpay_webhook_signature("forged", genuine.body))),
        (genuine.body, genuine.metadata(x_razorpay_signature=None)),  # no signature at all
        (genuine.body + b"\n", genuine.metadata()),  # one byte more
        (genuine.body, genuine.metadata(x_razorpay_signature=_flip_last(genuine.headers["x-razorpay-signature"]))),
    ]
    for body, metadata in attempts:
        detail = await fails_with(hooks.payments.RazorpayWebhook(http_body(body), metadata=metadata), 3101)
        assert not detail.retryable

    assert signature_failures("razorpay") - refused_before == len(attempts)
    assert await stored_event(engine, "razorpay", genuine.event_id) is None
    assert (await payment_row(engine, session.payment_token)).status == "pending"
    assert await events(engine, order, "checkout.payment.captured") == []
    assert await count_rows(engine, outbox, outbox.c.aggregate_id == order) == outbox_before
    assert await webhook_audit(engine, "razorpay", genuine.event_id) == []

    ack = await hooks.payments.RazorpayWebhook(http_body(genuine.body), metadata=genuine.metadata())
    assert ack.received and not ack.duplicate and ack.event_id == genuine.event_id
    await captured_once(engine, order)


def _flip_last(signature: str) -> str:
    return signature[:-1] + ("1" if signature[-1] == "0" else "0")  # always another signature


async def test_amount_mismatch_is_acknowledged_flagged_and_not_paid(hooks, engine):
    user = new_user()
    order, session = await razorpay_session(hooks, engine, user)
    await pay(hooks, session.gateway_order_id, amount=100)  # ₹1.00 captured for a ₹1770.00 order
    sent = await settled(hooks.emulator, session.gateway_order_id, 2)

    assert [e["state"] for e in sent] == ["delivered", "delivered"]  # 2xx: Razorpay stops retrying
    assert all(len(e["attempts"]) == 1 for e in sent)
    assert (await payment_row(engine, session.payment_token)).status == "pending"
    assert len(await events(engine, order, "checkout.payment.flagged")) == 2  # payment.captured and order.paid
    assert await events(engine, order, "checkout.payment.captured") == []
    flagged = [r for r in await audit_rows(engine, session.payment_token) if r.flagged]
    assert flagged and {r.action for r in flagged} == {"outcome:flagged"}
    assert (flagged[0].after["reported_amount"], flagged[0].after["expected_amount"]) == ("1.00", "1770.00")
    assert await events(engine, order, "checkout.payment.flagged")
    for delivery in hooks.receiver.deliveries:
        assert await webhook_audit(engine, "razorpay", delivery.event_id) == ["webhook:flagged"]
        assert (await stored_event(engine, "razorpay", delivery.event_id)).status == "processed"


async def test_webhook_and_browser_callback_racing_capture_once(hooks, engine):
    hooks.receiver.forward = False
    for _ in range(5):
        user = new_user()
        order, session = await razorpay_session(hooks, engine, user)
        outcome = await pay(hooks, session.gateway_order_id)
        await settled(hooks.emulator, session.gateway_order_id, 2)
        webhook = [d for d in hooks.receiver.of("payment.captured") if session.gateway_order_id.encode() in d.body][0]
        params = outcome["redirect_params"]
        callback = payment_pb2.VerifyPaymentRequest(razorpay_order_id=params["razorpay_order_id"],
                                                    razorpay_payment_id=params["razorpay_payment_id"],
                                                    razorpay_signature=params["razorpay_signature"])
        verified, ack = await asyncio.gather(
            hooks.payments.VerifyPayment(callback, metadata=bearer(hooks.settings, user)),
            hooks.payments.RazorpayWebhook(http_body(webhook.body), metadata=webhook.metadata()))

        assert verified.status == "captured" and ack.received and not ack.duplicate
        await captured_once(engine, order)
        [captured] = await events(engine, order, "checkout.payment.captured")
        assert captured["source"] in ("callback", "webhook")
        verdicts = await webhook_audit(engine, "razorpay", webhook.event_id)
        assert verdicts == ["status:captured" if captured["source"] == "webhook" else "webhook:duplicate"]


async def test_an_event_whose_processing_failed_is_processed_again(hooks, engine):
    """The payment row is locked longer than the handler may wait: the event is stored as failed
    and answered 503 (4001, retryable, no exception named); Razorpay's retry then applies it once."""
    user = new_user()
    order, session = await razorpay_session(hooks, engine, user)
    failed_before = webhook_count("razorpay", "failed")
    async with engine.connect() as blocker:
        await blocker.execute(text("SELECT 1 FROM payment_sessions WHERE token = :t FOR UPDATE"),
                              {"t": session.payment_token})
        await pay(hooks, session.gateway_order_id)
        first = await eventually(lambda: _first_answer(hooks, "payment.captured"), what="first delivery")
        assert first.status == 503 and first.answer["code"] == 4001 and first.answer["retryable"]
        assert "LockNotAvailable" not in first.answer["message"] and "Error" not in first.answer["message"]
        row = await stored_event(engine, "razorpay", first.event_id)
        assert row.status == "failed" and "LockNotAvailable" in row.error and row.body == first.body
        assert await webhook_audit(engine, "razorpay", first.event_id) == []
        await blocker.rollback()  # the lock goes; Razorpay's next attempt gets through

    sent = await settled(hooks.emulator, session.gateway_order_id, 2)
    captured_event = next(e for e in sent if e["event"] == "payment.captured")
    statuses = [a["status"] for a in captured_event["attempts"]]
    assert statuses[0] == 503 and statuses[-1] == 200 and captured_event["state"] == "delivered"
    assert webhook_count("razorpay", "failed") - failed_before >= 1
    row = await stored_event(engine, "razorpay", first.event_id)
    assert row.status == "processed" and row.error is None
    await captured_once(engine, order)
    assert len(await events(engine, order, "checkout.payment.captured")) == 1
    # both events were held up and retried; whichever got through first captured, the other agreed
    verdicts = [await webhook_audit(engine, "razorpay", e["id"]) for e in sent]
    assert sorted(v[0] for v in verdicts) == ["status:captured", "webhook:duplicate"]
    assert all(set(v[1:]) <= {"webhook:duplicate"} for v in verdicts)


async def _first_answer(hooks, event_type: str):
    answered = [d for d in hooks.receiver.of(event_type) if d.status]
    return answered[0] if answered else None


async def test_events_we_do_not_act_on_are_stored_ignored_and_acknowledged(hooks, engine):
    body = (b'{"entity":"event","account_id":"acc_EmulatorDev001","event":"payment.dispute.created",'
            b'"contains":["dispute"],"payload":{"dispute":{"entity":{"id":"disp_1","amount":100}}},'
            b'"created_at":1767225600}')
    metadata = (("x-razorpay-signature", razorpay_webhook_signature("dev-webhook-secret", body)),
                ("x-razorpay-event-id", f"evt_ignored_{new_user()[:8]}"))
    ack = await hooks.payments.RazorpayWebhook(http_body(body), metadata=metadata)
    assert ack.received and not ack.duplicate and ack.event_id == metadata[1][1]
    row = await stored_event(engine, "razorpay", ack.event_id)
    assert (row.status, row.event_type) == ("ignored", "payment.dispute.created") and "not handled" in row.error
    again = await hooks.payments.RazorpayWebhook(http_body(body), metadata=metadata)
    assert again.duplicate
    assert await webhook_audit(engine, "razorpay", ack.event_id) == ["webhook:ignored", "webhook:duplicate"]


async def test_without_an_event_id_header_the_body_digest_identifies_the_event(hooks, engine):
    body = b'{"entity":"event","event":"payment.authorized","payload":{},"created_at":1767225601}'
    metadata = (("x-razorpay-signature", razorpay_webhook_signature("dev-webhook-secret", body)),)
    first = await hooks.payments.RazorpayWebhook(http_body(body), metadata=metadata)
    second = await hooks.payments.RazorpayWebhook(http_body(body), metadata=metadata)
    assert first.event_id.startswith("sha256:") and first.event_id == second.event_id
    assert (first.duplicate, second.duplicate) == (False, True)


async def test_rotated_secrets_are_all_accepted(engine):
    """RAZORPAY_WEBHOOK_SECRET="new,old": a webhook signed with either is taken; another is not."""
    from common.errors import CheckoutError

    handler = webhook_handler(engine, WebhookTuning(razorpay_secrets=("new-secret", "old-secret"), stripe_secrets=()))
    for secret in ("new-secret", "old-secret"):
        body = (b'{"entity":"event","event":"payment.authorized","payload":{},"created_at":1767225602,"k":"'
                + secret.encode() + b'"}')
        ack = await handler.razorpay(body, {"x-razorpay-signature": [razorpay_webhook_signature(secret, body)]})
        assert ack.verdict == "ignored"
    try:
        await handler.razorpay(b"{}", {"x-razorpay-signature": [razorpay_webhook_signature("dev-webhook-secret", b"{}")]})
    except CheckoutError as error:
        assert error.code.spec.code == 3101
    else:
        raise AssertionError("a retired secret was accepted")
