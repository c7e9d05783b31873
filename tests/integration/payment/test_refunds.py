"""Refunds on real PostgreSQL (role checkout_payment) and the real gateway emulator: the use case
(payment_svc/refunds.py), its repository and the refund reconciler.

A session of 1770.00 INR is opened through OpenSession, paid at the emulator, and marked captured
as the webhook would have done (the refunds' own path starts from a captured session)."""

from __future__ import annotations

import asyncio
import time
import uuid
from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.errors import CheckoutError
from common.request_context import Caller
from gateway_emulator.razorpay_events import php_json
from gateway_emulator.signing import razorpay_webhook_signature
from payment_svc.domain.refunds import request_fingerprint
from tests.support.payments import PaymentStack, new_order_token, open_session

ADMIN = Caller(user_id=str(uuid.uuid4()), roles=("admin",))


async def captured_order(stack: PaymentStack, engine: AsyncEngine, gateway: str = "razorpay") -> str:
    order_token = new_order_token()
    session = await open_session(stack, order_token, str(uuid.uuid4()), gateway=gateway)
    outcome = stack.emulator.pay(session.gateway_order_id)
    payment_id = outcome["payment"]["id"]
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE payment.payment_sessions SET status = 'captured', gateway_payment_id = :p "
                                "WHERE token = :t"), {"p": payment_id, "t": session.payment_token})
    return order_token


async def refund_rows(engine: AsyncEngine, order_token: str) -> list:
    async with engine.connect() as conn:
        return list((await conn.execute(text(
            "SELECT refund_id, amount, status, gateway_refund_id FROM payment.refunds WHERE order_token = :o "
            "ORDER BY created_at"), {"o": order_token})).all())


async def test_concurrent_requests_are_checked_one_after_the_other(stack: PaymentStack, engine: AsyncEngine):
    """12 requests of 300.00 at once against 1770.00: 5 fit (1500.00), 7 are 3301."""
    order_token = await captured_order(stack, engine)
    service = stack.parts.refunds
    results = await asyncio.gather(*(service.create_refund(ADMIN, order_token, "300.00", "", str(uuid.uuid4()))
                                     for _ in range(12)), return_exceptions=True)
    made = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BaseException)]
    assert len(made) == 5 and all(isinstance(r, CheckoutError) and r.code.spec.code == 3301 for r in refused), results
    rows = await refund_rows(engine, order_token)
    assert len(rows) == 5 and sum(row.amount for row in rows) == Decimal("1500.00")
    assert len([r for r in stack.emulator.state()["refunds"] if r["notes"]["order_token"] == order_token]) == 5


async def test_an_unreachable_gateway_leaves_it_pending_and_the_reconciler_finishes_it(stack: PaymentStack,
                                                                                       engine: AsyncEngine):
    order_token = await captured_order(stack, engine, "stripe")
    stack.emulator.set_faults("stripe", down=True)
    try:
        view = await stack.parts.refunds.create_refund(ADMIN, order_token, "", "", "")
    finally:
        stack.emulator.set_faults("stripe", down=False)
    assert (view.status, view.gateway_refund_id, view.amount) == ("pending", "", Decimal("1770.00"))
    async with engine.begin() as conn:  # its next check is due now
        await conn.execute(text("UPDATE payment.refunds SET next_check_at = now() - interval '1 second' "
                                "WHERE refund_id = :r"), {"r": view.refund_id})
    await stack.parts.refund_reconciler.one_pass()  # the create again, with the same key
    [row] = await refund_rows(engine, order_token)
    assert row.gateway_refund_id and row.gateway_refund_id.startswith("re_")
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE payment.refunds SET next_check_at = now() - interval '1 second' "
                                "WHERE refund_id = :r"), {"r": view.refund_id})
    deadline = asyncio.get_running_loop().time() + 10
    while row.status == "pending" and asyncio.get_running_loop().time() < deadline:  # the emulator settles it
        await stack.parts.refund_reconciler.one_pass()
        [row] = await refund_rows(engine, order_token)
        if row.status == "pending":
            async with engine.begin() as conn:
                await conn.execute(text("UPDATE payment.refunds SET next_check_at = now() WHERE refund_id = :r"),
                                   {"r": view.refund_id})
            await asyncio.sleep(0.05)
    assert row.status == "processed"
    async with engine.connect() as conn:
        events = (await conn.execute(text("SELECT subject, payload FROM payment.outbox WHERE payload->>'refund_id' = :r"),
                                     {"r": view.refund_id})).all()
    assert [e.subject for e in events] == ["checkout.payment.refund_processed"]
    assert (events[0].payload["refunded_amount"], events[0].payload["fully_refunded"]) == ("1770.00", True)
    assert len([r for r in stack.emulator.state()["refunds"] if r["notes"]["order_token"] == order_token]) == 1


async def test_a_replay_after_a_stop_between_the_steps_makes_one_refund(stack: PaymentStack, engine: AsyncEngine):
    """Step 1 committed, then the process stopped: the replay with the key carries it on, once."""
    order_token = await captured_order(stack, engine)
    service = stack.parts.refunds
    key = str(uuid.uuid4())
    reserved = await service._reserve(ADMIN, order_token, Decimal("10.00"), "dup", key,
                                      request_fingerprint(order_token, "10.00", "dup"))
    first, second = await asyncio.gather(service.create_refund(ADMIN, order_token, "10.00", "dup", key),
                                         service.create_refund(ADMIN, order_token, "10", "dup", key))
    assert first.refund_id == second.refund_id == reserved.refund_id
    assert len([r for r in stack.emulator.state()["refunds"] if r["notes"]["order_token"] == order_token]) == 1
    with pytest.raises(CheckoutError) as caught:
        await service.create_refund(ADMIN, order_token, "10.00", "other reason", key)
    assert caught.value.code.spec.code == 2005


async def test_not_captured_is_3302(stack: PaymentStack, engine: AsyncEngine):
    order_token = new_order_token()
    await open_session(stack, order_token, str(uuid.uuid4()))
    with pytest.raises(CheckoutError) as caught:
        await stack.parts.refunds.create_refund(ADMIN, order_token, "", "", "")
    assert caught.value.code.spec.code == 3302
    assert await refund_rows(engine, order_token) == []



def signed_razorpay(body: bytes, event_id: str) -> dict[str, list[str]]:
    return {"x-razorpay-signature": [razorpay_webhook_signature("dev-webhook-secret", body)],
            "x-razorpay-event-id": [event_id]}


async def test_a_refund_made_at_the_gateway_is_recorded_and_its_duplicate_changes_nothing(stack: PaymentStack,
                                                                                          engine: AsyncEngine):
    order_token = await captured_order(stack, engine)
    async with engine.connect() as conn:
        payment_id = (await conn.execute(text("SELECT gateway_payment_id FROM payment.payment_sessions "
                                              "WHERE order_token = :o"), {"o": order_token})).scalar_one()
    body = php_json({"entity": "event", "event": "refund.processed", "contains": ["refund"], "payload": {"refund": {
        "entity": {"id": "rfnd_Dashboard01", "entity": "refund", "amount": 77000, "currency": "INR",
                   "payment_id": payment_id, "notes": [], "status": "processed"}}}, "created_at": int(time.time())})
    event_id = f"evt_{uuid.uuid4().hex[:14]}"
    first = await stack.parts.service.razorpay_webhook(body, signed_razorpay(body, event_id))
    again = await stack.parts.service.razorpay_webhook(body, signed_razorpay(body, f"evt_{uuid.uuid4().hex[:14]}"))
    assert (first.duplicate, first.verdict, again.verdict) == (False, "accepted", "duplicate")
    [row] = await refund_rows(engine, order_token)
    assert (row.amount, row.status, row.gateway_refund_id) == (Decimal("770.00"), "processed", "rfnd_Dashboard01")
    # what is left counts it: 1000.00 is left of 1770.00
    with pytest.raises(CheckoutError) as caught:
        await stack.parts.refunds.create_refund(ADMIN, order_token, "1000.01", "", "")
    assert caught.value.code.spec.code == 3301
    assert (await stack.parts.refunds.create_refund(ADMIN, order_token, "", "", "")).amount == Decimal("1000.00")


async def test_ten_requests_with_one_key_at_once_make_one_refund_and_one_answer(stack: PaymentStack,
                                                                                engine: AsyncEngine):
    order_token = await captured_order(stack, engine)
    key = str(uuid.uuid4())
    answers = await asyncio.gather(*(stack.parts.refunds.create_refund(ADMIN, order_token, "250.00", "dup", key)
                                     for _ in range(10)))
    assert len(set(answers)) == 1, answers
    [row] = await refund_rows(engine, order_token)
    assert (str(row.refund_id), row.amount) == (answers[0].refund_id, Decimal("250.00"))
    assert len([r for r in stack.emulator.state()["refunds"] if r["notes"]["order_token"] == order_token]) == 1


async def test_two_replicas_reconciling_one_unanswered_refund_make_one_gateway_refund(stack: PaymentStack,
                                                                                       engine: AsyncEngine):
    order_token = await captured_order(stack, engine, "stripe")
    stack.emulator.set_faults("stripe", down=True)
    try:
        view = await stack.parts.refunds.create_refund(ADMIN, order_token, "", "", "")
    finally:
        stack.emulator.set_faults("stripe", down=False)
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE payment.refunds SET next_check_at = now() - interval '1 second' "
                                "WHERE refund_id = :r"), {"r": view.refund_id})
    # the reconciler keeps nothing in memory: two passes at once are what two replicas do
    await asyncio.gather(*(stack.parts.refund_reconciler.one_pass() for _ in range(2)))

    [row] = await refund_rows(engine, order_token)
    assert row.gateway_refund_id and row.gateway_refund_id.startswith("re_")
    assert len([r for r in stack.emulator.state()["refunds"] if r["notes"]["order_token"] == order_token]) == 1
