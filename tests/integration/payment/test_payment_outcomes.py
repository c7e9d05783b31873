"""apply_payment_outcome, the one function that turns a gateway's word into state (the browser
callback and the webhooks share it), against real PostgreSQL and real concurrent transactions."""

from __future__ import annotations

import asyncio
import datetime
import uuid
from decimal import Decimal

import pytest
from sqlalchemy import insert

from common.clock import utc_now
from common.tables import audit_log, payment_tokens
from payment_svc.outcomes import OutcomeResult, apply_payment_outcome
from tests.support.tokens import new_user
from tests.support.payments import audit_rows, count_rows, events, new_order, order_status, payment_row


async def session_of(engine, order_token: str, *, attempt: int = 1, gateway: str = "razorpay", status: str = "pending",
                     amount: str = "1770.00", currency: str = "INR") -> tuple[str, str]:
    """A payment_tokens row already opened at the gateway: (payment token, gateway order id)."""
    token, gateway_order_id = str(uuid.uuid4()), f"order_{uuid.uuid4().hex[:14]}"
    async with engine.begin() as conn:
        await conn.execute(insert(payment_tokens).values(
            token=token, order_token=order_token, attempt=attempt, gateway=gateway, gateway_order_id=gateway_order_id,
            checkout_url="http://example.invalid/checkout", amount=Decimal(amount), currency=currency, status=status,
            expires_at=utc_now() + datetime.timedelta(minutes=30)))
    return token, gateway_order_id


async def report(engine, gateway_order_id: str, status: str = "captured", *, payment_id: str = "pay_A",
                 amount_minor: int = 177000, currency: str = "INR", source: str = "webhook",
                 gateway: str = "razorpay", hold_s: float = 0.0) -> OutcomeResult:
    async with engine.begin() as conn:
        result = await apply_payment_outcome(
            conn, gateway=gateway, gateway_order_id=gateway_order_id, gateway_payment_id=payment_id, status=status,
            amount_minor=amount_minor, currency=currency, source=source, actor=f"test:{source}")
        await asyncio.sleep(hold_s)  # keep the transaction (and its locks) open a little
    return result


async def test_webhook_and_callback_racing_capture_once(engine):
    user = new_user()
    order = await new_order(engine, user, status="awaiting_payment")
    payment, gateway_order = await session_of(engine, order)
    results = await asyncio.gather(*(report(engine, gateway_order, source=source, hold_s=0.05)
                                     for source in ("webhook", "callback", "webhook", "callback")))

    assert sorted(r.kind for r in results) == ["captured", "duplicate", "duplicate", "duplicate"]
    assert await order_status(engine, order) == "paid"
    assert len(await events(engine, order, "checkout.payment.captured")) == 1
    assert await count_rows(engine, audit_log, audit_log.c.entity_id == payment, audit_log.c.action == "status:captured") == 1
    row = await payment_row(engine, payment)
    assert (row.status, row.gateway_payment_id) == ("captured", "pay_A")


async def test_failure_fails_the_order_then_a_new_payment_of_the_same_gateway_order_pays_it(engine):
    user = new_user()
    order = await new_order(engine, user, status="awaiting_payment")
    payment, gateway_order = await session_of(engine, order)

    failed = await report(engine, gateway_order, "failed", payment_id="pay_F")
    assert (failed.kind, failed.order_status, failed.payment.status) == ("failed", "payment_failed", "failed")
    assert (await report(engine, gateway_order, "failed", payment_id="pay_F")).kind == "duplicate"
    [event] = await events(engine, order, "checkout.payment.failed")
    assert event["gateway_payment_id"] == "pay_F"

    captured = await report(engine, gateway_order, "captured", payment_id="pay_OK")
    assert (captured.kind, captured.order_status) == ("captured", "paid")
    assert (await payment_row(engine, payment)).gateway_payment_id == "pay_OK"
    # captured is final: a late failure changes nothing
    late = await report(engine, gateway_order, "failed", payment_id="pay_F2")
    assert (late.kind, late.changed) == ("ignored", False)
    assert (await payment_row(engine, payment)).status == "captured"


async def test_a_stale_failure_of_an_older_attempt_leaves_the_order_waiting(engine):
    user = new_user()
    order = await new_order(engine, user, status="awaiting_payment")
    _, first = await session_of(engine, order, attempt=1)
    await session_of(engine, order, attempt=2)
    result = await report(engine, first, "failed", payment_id="pay_Old")
    assert (result.kind, result.order_status) == ("failed", "awaiting_payment")


async def test_capture_after_the_session_expired_still_pays_a_payable_order(engine):
    user = new_user()
    order = await new_order(engine, user, status="awaiting_payment")
    _, gateway_order = await session_of(engine, order, status="expired")
    result = await report(engine, gateway_order)
    assert (result.kind, result.order_status, result.payment.status) == ("captured", "paid", "captured")


async def test_capture_for_an_expired_order_is_recorded_and_flagged_not_fulfilled(engine):
    user = new_user()
    order = await new_order(engine, user, status="expired")
    payment, gateway_order = await session_of(engine, order, status="expired")
    result = await report(engine, gateway_order)

    assert (result.kind, result.flagged, result.changed) == ("flagged", True, True)
    assert (await payment_row(engine, payment)).status == "captured"  # the money is real
    assert await order_status(engine, order) == "expired"
    assert await events(engine, order, "checkout.payment.captured") == []
    assert len(await events(engine, order, "checkout.payment.flagged")) == 1
    assert [r.flagged for r in await audit_rows(engine, payment)] == [False, True]  # status:captured, then the flag


async def test_a_second_capture_of_a_captured_session_is_flagged(engine):
    user = new_user()
    order = await new_order(engine, user, status="awaiting_payment")
    payment, gateway_order = await session_of(engine, order)
    await report(engine, gateway_order, payment_id="pay_One")
    result = await report(engine, gateway_order, payment_id="pay_Two")
    assert (result.kind, result.flagged, result.changed) == ("flagged", True, False)
    assert (await payment_row(engine, payment)).gateway_payment_id == "pay_One"
    assert len(await events(engine, order, "checkout.payment.captured")) == 1


async def test_currency_mismatch_is_flagged(engine):
    user = new_user()
    order = await new_order(engine, user, status="awaiting_payment")
    payment, gateway_order = await session_of(engine, order)
    result = await report(engine, gateway_order, currency="USD")
    assert (result.kind, result.flagged) == ("flagged", True)
    assert (await payment_row(engine, payment)).status == "pending"
    assert await order_status(engine, order) == "awaiting_payment"


async def test_stripe_sessions_by_intent_id(engine):
    user = new_user()
    order = await new_order(engine, user, status="pending")
    _, intent = await session_of(engine, order, gateway="stripe")
    assert (await report(engine, intent, gateway="razorpay")).kind == "unknown_session"
    result = await report(engine, intent, gateway="stripe", payment_id=intent)
    assert (result.kind, result.order_status) == ("captured", "paid")


async def test_unknown_gateway_order_and_pending_reports(engine):
    unknown = await report(engine, "order_NoSuchOrder001")
    assert (unknown.kind, unknown.flagged, unknown.payment) == ("unknown_session", True, None)
    flagged = await count_rows(engine, audit_log, audit_log.c.entity_id == "razorpay:order_NoSuchOrder001",
                               audit_log.c.flagged.is_(True))
    assert flagged == 1

    user = new_user()
    order = await new_order(engine, user, status="awaiting_payment")
    _, gateway_order = await session_of(engine, order)
    assert (await report(engine, gateway_order, "pending")).kind == "ignored"


async def test_needs_the_callers_transaction(engine):
    async with engine.connect() as conn:
        with pytest.raises(RuntimeError):
            await apply_payment_outcome(conn, gateway="razorpay", gateway_order_id="order_X", gateway_payment_id="pay_X",
                                        status="captured", amount_minor=1, currency="INR", source="webhook", actor="t")
