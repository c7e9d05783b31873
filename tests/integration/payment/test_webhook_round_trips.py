"""What a webhook costs in round trips, and that the cheaper ways end as the old ones did.

The second event of a payment its session is already captured with (Razorpay's order.paid after
payment.captured, Stripe's payment_intent.succeeded after checkout.session.completed) takes one
statement on an autocommit connection: its webhook_events row and its `webhook:duplicate` audit
row, only if the session is captured by that payment and the event is not stored yet. Anything
else (the session not captured yet, another payment, a redelivery, a capture committing
meanwhile) falls back to the transaction and ends as it did before. The transaction's first
statement sets its lock_timeout, stores the event and reads the session, in one."""

from __future__ import annotations

import asyncio
import json

import pytest
from sqlalchemy import text

from common.errors import CheckoutError, ErrorCode
from gateway_emulator.signing import razorpay_webhook_signature
from payment_svc.tuning import WebhookTuning
from payment_svc.webhooks import Ack
from tests.support.payments import audit_rows, captured_once, events, new_order_token, open_session, payment_row
from tests.support.round_trips import sent_statements
from tests.support.tokens import new_user
from tests.support.webhooks import Delivery, settled, stored_event, webhook_audit, webhook_count, webhook_handler

SECRET, STRIPE_SECRET = "dev-webhook-secret", "dev-stripe-webhook-secret"


def handler_of(engine):
    return webhook_handler(engine, WebhookTuning(razorpay_secrets=(SECRET,), stripe_secrets=(STRIPE_SECRET,),
                                                 lock_timeout_s=2.0))


def headers(delivery: Delivery) -> dict[str, list[str]]:
    return {name: [value] for name, value in delivery.metadata()}


async def paid_at_the_gateway(hooks):
    """A session paid at the emulator, its two webhooks recorded but not delivered."""
    order = new_order_token()
    session = await open_session(hooks, order, new_user())
    hooks.receiver.forward = False
    outcome = await asyncio.to_thread(hooks.emulator.pay, session.gateway_order_id)
    await settled(hooks.emulator, session.gateway_order_id, 2)
    captured = next(d for d in hooks.receiver.of("payment.captured") if session.gateway_order_id.encode() in d.body)
    paid = next(d for d in hooks.receiver.of("order.paid") if session.gateway_order_id.encode() in d.body)
    return order, session, outcome["payment"]["id"], captured, paid


def resigned(delivery: Delivery, change) -> tuple[bytes, dict[str, list[str]]]:
    """The delivery's event with `change` made to its payment entity, signed again."""
    document = json.loads(delivery.body)
    change(document["payload"]["payment"]["entity"])
    body = json.dumps(document).encode()
    return body, {**headers(delivery), "x-razorpay-signature": [razorpay_webhook_signature(SECRET, body)]}


async def test_order_paid_after_the_capture_is_one_autocommit_statement(hooks, engine):
    order, session, payment_id, captured, paid = await paid_at_the_gateway(hooks)
    handler = handler_of(engine)
    await handler.razorpay(captured.body, headers(captured))
    duplicates_before = webhook_count("razorpay", "duplicate")

    with sent_statements(engine) as sent:
        ack = await handler.razorpay(paid.body, headers(paid))

    assert ack == Ack(paid.event_id, False, "duplicate")
    assert len(sent) == 1 and sent[0].autocommit  # no BEGIN, no COMMIT
    row = await stored_event(engine, "razorpay", paid.event_id)
    assert (row.status, row.event_type, row.body, row.error, row.subject) == (
        "processed", "order.paid", paid.body, None, f"{payment_id}:order.paid")
    assert row.processed_at == row.received_at
    [audit] = await audit_rows(engine, f"razorpay:{paid.event_id}")
    assert (audit.actor, audit.entity_type, audit.action, audit.before, audit.flagged) == (
        "webhook:razorpay", "webhook", "webhook:duplicate", None, False)
    assert audit.after == {
        "event_type": "order.paid", "subject": f"{payment_id}:order.paid",
        "created_at": json.loads(paid.body)["created_at"], "gateway_order_id": session.gateway_order_id,
        "gateway_payment_id": payment_id, "reported_status": "captured", "amount_minor": 177000, "currency": "INR",
        "outcome": "duplicate", "changed": False, "payment_token": session.payment_token, "order_token": order}
    assert webhook_count("razorpay", "duplicate") - duplicates_before == 1
    assert len(await events(engine, order, "checkout.payment.captured")) == 1


async def test_a_capture_of_a_session_not_captured_yet_falls_back_to_the_transaction(hooks, engine):
    """order.paid first: the shortcut finds no captured session, writes nothing, and the
    transaction captures; payment.captured after it is a duplicate found by the transaction (it is
    not a type that usually follows the capture, so no shortcut is tried for it)."""
    order, session, payment_id, captured, paid = await paid_at_the_gateway(hooks)
    handler = handler_of(engine)

    with sent_statements(engine) as sent:
        first = await handler.razorpay(paid.body, headers(paid))
    assert first == Ack(paid.event_id, False, "accepted")
    assert sent[0].autocommit and not any(s.autocommit for s in sent[1:]) and len(sent) > 1
    await captured_once(engine, order)

    with sent_statements(engine) as sent:
        second = await handler.razorpay(captured.body, headers(captured))
    assert second == Ack(captured.event_id, False, "duplicate") and not any(s.autocommit for s in sent)
    assert await webhook_audit(engine, "razorpay", paid.event_id) == ["status:captured"]
    assert await webhook_audit(engine, "razorpay", captured.event_id) == ["webhook:duplicate"]


async def test_a_redelivery_of_the_repeat_is_answered_as_a_redelivery(hooks, engine):
    order, session, payment_id, captured, paid = await paid_at_the_gateway(hooks)
    handler = handler_of(engine)
    await handler.razorpay(captured.body, headers(captured))
    await handler.razorpay(paid.body, headers(paid))

    again = await handler.razorpay(paid.body, headers(paid))

    assert again == Ack(paid.event_id, True, "duplicate")
    first, second = await audit_rows(engine, f"razorpay:{paid.event_id}")
    assert (first.action, second.action, second.after["stored_status"]) == (
        "webhook:duplicate", "webhook:duplicate", "processed")


async def test_two_copies_of_the_repeat_at_once_store_it_once(hooks, engine):
    order, session, payment_id, captured, paid = await paid_at_the_gateway(hooks)
    handler = handler_of(engine)
    await handler.razorpay(captured.body, headers(captured))

    acks = await asyncio.gather(*(handler.razorpay(paid.body, headers(paid)) for _ in range(2)))

    assert sorted(ack.duplicate for ack in acks) == [False, True]
    assert {ack.verdict for ack in acks} == {"duplicate"}
    assert await webhook_audit(engine, "razorpay", paid.event_id) == ["webhook:duplicate"] * 2


async def test_another_payment_or_amount_of_a_captured_session_is_judged_as_before(hooks, engine):
    """Another payment id: flagged by the transaction (money to give back). The same payment with
    another amount: a duplicate, as judge_payment has it (the session's capture stands)."""
    order, session, payment_id, captured, paid = await paid_at_the_gateway(hooks)
    handler = handler_of(engine)
    await handler.razorpay(captured.body, headers(captured))

    body, other_payment = resigned(paid, lambda entity: entity.update(id="pay_another000001"))
    flagged = await handler.razorpay(body, {**other_payment, "x-razorpay-event-id": ["evt_otherpayment01"]})
    body, other_amount = resigned(paid, lambda entity: entity.update(amount=100))
    same_payment = await handler.razorpay(body, other_amount)

    assert flagged.verdict == "flagged" and same_payment.verdict == "duplicate"
    assert len(await events(engine, order, "checkout.payment.flagged")) == 1
    assert (await payment_row(engine, session.payment_token)).gateway_payment_id == payment_id


async def test_a_capture_committing_meanwhile_makes_the_event_a_duplicate_through_the_transaction(hooks, engine):
    """The first event's capture is still uncommitted when order.paid arrives: the shortcut sees
    the session pending and writes nothing; the transaction waits for the session's row and then
    finds it captured by this payment."""
    order, session, payment_id, captured, paid = await paid_at_the_gateway(hooks)
    handler = handler_of(engine)
    async with engine.connect() as capturing:
        await capturing.execute(text("UPDATE payment_sessions SET status = 'captured', gateway_payment_id = :p "
                                     "WHERE token = :t"), {"p": payment_id, "t": session.payment_token})
        delivery = asyncio.create_task(handler.razorpay(paid.body, headers(paid)))
        await asyncio.sleep(0.3)
        assert not delivery.done()  # waiting for the session's row
        await capturing.commit()
    ack = await delivery

    assert ack == Ack(paid.event_id, False, "duplicate")
    [audit] = await audit_rows(engine, f"razorpay:{paid.event_id}")
    assert audit.after["outcome"] == "duplicate" and audit.after["payment_token"] == session.payment_token
    assert (await stored_event(engine, "razorpay", paid.event_id)).status == "processed"


async def test_stripes_intent_event_after_the_completed_session_finds_it_by_our_token(hooks, engine):
    """payment_intent.succeeded names the intent, not the Checkout Session: the shortcut finds the
    session by the payment token in its metadata, as the transaction would."""
    order = new_order_token()
    session = await open_session(hooks, order, new_user(), gateway="stripe", amount="50.00", currency="USD")
    hooks.receiver.forward = False
    await asyncio.to_thread(hooks.emulator.pay, session.gateway_order_id)
    completed, succeeded = await settled(hooks.emulator, session.gateway_order_id, 2)
    by_id = {d.event_id: d for d in hooks.receiver.of(gateway="stripe")}
    handler = handler_of(engine)
    first = by_id[completed["id"]]
    assert (await handler.stripe(first.body, headers(first))).verdict == "accepted"

    second = by_id[succeeded["id"]]
    with sent_statements(engine) as sent:
        ack = await handler.stripe(second.body, headers(second))

    assert ack == Ack(succeeded["id"], False, "duplicate") and len(sent) == 1 and sent[0].autocommit
    [audit] = await audit_rows(engine, f"stripe:{succeeded['id']}")
    assert audit.after["payment_token"] == session.payment_token and audit.after["order_token"] == order
    await captured_once(engine, order)


async def test_the_first_capture_is_three_statements_in_one_transaction(hooks, engine):
    """BEGIN; the event stored with the session read; the conditional UPDATE; audit + outbox
    with the COMMIT (common/uow.py)."""
    order, session, payment_id, captured, paid = await paid_at_the_gateway(hooks)

    with sent_statements(engine) as sent:
        ack = await handler_of(engine).razorpay(captured.body, headers(captured))

    assert ack == Ack(captured.event_id, False, "accepted")
    assert len(sent) == 3 and not any(s.autocommit for s in sent)
    assert "INSERT INTO payment.webhook_events" in sent[0].sql and sent[1].sql.startswith("UPDATE payment.payment_sessions")
    await captured_once(engine, order)
    # one audit row for the one change, carrying the event that made it
    opened, change = await audit_rows(engine, session.payment_token)
    assert (opened.action, change.action, change.actor) == ("session_opened", "status:captured", "webhook:razorpay")
    assert change.after == {
        "status": "captured", "gateway_payment_id": payment_id, "amount": "1770.00", "currency": "INR",
        "source": "webhook", "webhook_event": {
            "id": f"razorpay:{captured.event_id}", "event_type": "payment.captured",
            "subject": f"{payment_id}:payment.captured", "created_at": json.loads(captured.body)["created_at"]}}
    assert await audit_rows(engine, f"razorpay:{captured.event_id}") == []


async def refused_while_another_delivery_holds(engine, event) -> tuple[CheckoutError, float]:
    """The handler's error and how long it waited, while an uncommitted insert of the same event
    (another delivery, still in its transaction) holds the row it needs."""
    handler = webhook_handler(engine, WebhookTuning(razorpay_secrets=(SECRET,), stripe_secrets=(), lock_timeout_s=0.3))
    async with engine.connect() as other_delivery:
        await other_delivery.execute(text(
            "INSERT INTO webhook_events (gateway, event_id, event_type, body, status, received_at) "
            "VALUES ('razorpay', :e, :t, '', 'processed', now())"), {"e": event.event_id, "t": event.event_type})
        started = asyncio.get_running_loop().time()
        with pytest.raises(CheckoutError) as refused:
            await asyncio.wait_for(handler.razorpay(event.body, headers(event)), 5)
        waited = asyncio.get_running_loop().time() - started
        await other_delivery.rollback()
    return refused.value, waited


async def test_the_lock_timeout_bounds_the_wait_for_another_delivery_of_the_event(hooks, engine):
    """The statement that stores the event sets the timeout before its insert waits for a
    concurrent delivery of the same event: the gateway hears 4001 in time, and retries."""
    order, session, payment_id, captured, paid = await paid_at_the_gateway(hooks)
    refused, waited = await refused_while_another_delivery_holds(engine, captured)

    assert refused.code is ErrorCode.GATEWAY_UNAVAILABLE and waited < 2
    assert (await payment_row(engine, session.payment_token)).status == "pending"


async def test_the_lock_timeout_bounds_the_shortcuts_wait_for_another_delivery_too(hooks, engine):
    """The shortcut's statement sets the same timeout before its insert waits (autocommit: for that
    statement alone)."""
    order, session, payment_id, captured, paid = await paid_at_the_gateway(hooks)
    await handler_of(engine).razorpay(captured.body, headers(captured))
    refused, waited = await refused_while_another_delivery_holds(engine, paid)

    assert refused.code is ErrorCode.GATEWAY_UNAVAILABLE and waited < 2
    assert await webhook_audit(engine, "razorpay", paid.event_id) == []
    again = await handler_of(engine).razorpay(paid.body, headers(paid))  # the gateway's retry
    assert again == Ack(paid.event_id, False, "duplicate")
