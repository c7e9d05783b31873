"""apply_payment_outcome, the one function that turns a gateway's word into state (the browser
callback, the webhooks and the reconciler share it), against real PostgreSQL and real concurrent
transactions. It changes only the session and says what happened in payment.outbox; what that
means for the order is order_svc's to decide (it consumes these events)."""

from __future__ import annotations

import asyncio
import datetime
import uuid
from decimal import Decimal

import pytest
from sqlalchemy import insert

from common.clock import utc_now
from common.uow import UnitOfWork, uow_factory
from payment_svc.outcomes import GatewayReport, OutcomeResult, apply_payment_outcome
from payment_svc.repository import PaymentRepository
from payment_svc.tables import PLUMBING, payment_sessions
from tests.support.payments import audit_rows, count_rows, events, new_order_token, payment_row, payment_subjects
from tests.support.tokens import new_user

audit_log = PLUMBING.audit_log


async def session_of(engine, order_token: str, *, attempt: int = 1, gateway: str = "razorpay", status: str = "pending",
                     amount: str = "1770.00", currency: str = "INR", user_id: str | None = None) -> tuple[str, str]:
    """A payment_sessions row already opened at the gateway: (payment token, gateway order id)."""
    token, gateway_order_id = str(uuid.uuid4()), f"order_{uuid.uuid4().hex[:14]}"
    async with engine.begin() as conn:
        await conn.execute(insert(payment_sessions).values(
            token=token, order_token=order_token, attempt=attempt, user_id=user_id or new_user(), gateway=gateway,
            gateway_order_id=gateway_order_id, checkout_url="http://example.invalid/checkout", amount=Decimal(amount),
            currency=currency, status=status, expires_at=utc_now() + datetime.timedelta(minutes=30),
            order_expires_at=utc_now() + datetime.timedelta(hours=2)))
    return token, gateway_order_id


async def report(engine, gateway_order_id: str, status: str = "captured", *, payment_id: str = "pay_A",
                 amount_minor: int = 177000, currency: str = "INR", source: str = "webhook",
                 gateway: str = "razorpay", hold_s: float = 0.0) -> OutcomeResult:
    async with uow_factory(engine, PLUMBING)() as uow:
        result = await apply_payment_outcome(
            uow, PaymentRepository(), GatewayReport(gateway, gateway_order_id, payment_id, status, amount_minor, currency),
            source=source, actor=f"test:{source}")
        await asyncio.sleep(hold_s)  # keep the transaction (and its locks) open a little
        await uow.commit()
    return result


async def test_webhook_and_callback_racing_capture_once(engine):
    user = new_user()
    order = new_order_token()
    payment, gateway_order = await session_of(engine, order, user_id=user)
    results = await asyncio.gather(*(report(engine, gateway_order, source=source, hold_s=0.05)
                                     for source in ("webhook", "callback", "webhook", "callback")))

    assert sorted(r.kind for r in results) == ["captured", "duplicate", "duplicate", "duplicate"]
    [captured] = await events(engine, order, "checkout.payment.captured")
    assert (captured["payment_token"], captured["user_id"], captured["status"]) == (payment, user, "captured")
    assert await count_rows(engine, audit_log, audit_log.c.entity_id == payment, audit_log.c.action == "status:captured") == 1
    row = await payment_row(engine, payment)
    assert (row.status, row.gateway_payment_id) == ("captured", "pay_A")


async def test_a_failure_then_a_new_payment_of_the_same_gateway_order_captures(engine):
    order = new_order_token()
    payment, gateway_order = await session_of(engine, order)

    failed = await report(engine, gateway_order, "failed", payment_id="pay_F")
    assert (failed.kind, failed.payment.status, failed.changed) == ("failed", "failed", True)
    assert (await report(engine, gateway_order, "failed", payment_id="pay_F")).kind == "duplicate"
    [event] = await events(engine, order, "checkout.payment.failed")
    assert (event["gateway_payment_id"], event["attempt"], event["source"]) == ("pay_F", 1, "webhook")

    captured = await report(engine, gateway_order, "captured", payment_id="pay_OK")
    assert (captured.kind, captured.payment.status) == ("captured", "captured")
    assert (await payment_row(engine, payment)).gateway_payment_id == "pay_OK"
    # captured is final: a late failure changes nothing
    late = await report(engine, gateway_order, "failed", payment_id="pay_F2")
    assert (late.kind, late.changed) == ("ignored", False)
    assert (await payment_row(engine, payment)).status == "captured"
    assert await payment_subjects(engine, order) == ["checkout.payment.failed", "checkout.payment.captured"]
    assert [r.action for r in await audit_rows(engine, payment)] == ["status:failed", "status:captured"]


async def test_a_failure_of_an_older_attempt_names_its_attempt(engine):
    """Whether a stale failure fails the order is order_svc's call: the event says which attempt it was."""
    order = new_order_token()
    first, first_gateway_order = await session_of(engine, order, attempt=1)
    await session_of(engine, order, attempt=2)
    result = await report(engine, first_gateway_order, "failed", payment_id="pay_Old")
    assert (result.kind, result.payment.attempt) == ("failed", 1)
    [failed] = await events(engine, order, "checkout.payment.failed")
    assert (failed["attempt"], failed["payment_token"], failed["status"]) == (1, first, "failed")


async def test_capture_after_the_session_expired_still_captures(engine):
    order = new_order_token()
    payment, gateway_order = await session_of(engine, order, status="expired")
    result = await report(engine, gateway_order)
    assert (result.kind, result.payment.status, result.flagged) == ("captured", "captured", False)
    [captured] = await events(engine, order, "checkout.payment.captured")
    assert (captured["payment_token"], captured["amount"], captured["currency"]) == (payment, "1770.00", "INR")


async def test_a_second_capture_of_a_captured_session_is_flagged(engine):
    order = new_order_token()
    payment, gateway_order = await session_of(engine, order)
    await report(engine, gateway_order, payment_id="pay_One")
    result = await report(engine, gateway_order, payment_id="pay_Two")
    assert (result.kind, result.flagged, result.changed) == ("flagged", True, False)
    assert (await payment_row(engine, payment)).gateway_payment_id == "pay_One"
    assert len(await events(engine, order, "checkout.payment.captured")) == 1
    [flagged] = await events(engine, order, "checkout.payment.flagged")
    assert (flagged["gateway_payment_id"], flagged["status"]) == ("pay_Two", "captured")
    assert "second captured payment" in flagged["reason"]
    assert [(r.action, r.flagged) for r in await audit_rows(engine, payment)] == [
        ("status:captured", False), ("outcome:flagged", True)]


async def test_currency_mismatch_is_flagged(engine):
    order = new_order_token()
    payment, gateway_order = await session_of(engine, order)
    result = await report(engine, gateway_order, currency="USD")
    assert (result.kind, result.flagged) == ("flagged", True)
    assert (await payment_row(engine, payment)).status == "pending"
    assert await payment_subjects(engine, order) == ["checkout.payment.flagged"]
    [flag] = [r for r in await audit_rows(engine, payment) if r.flagged]
    assert (flag.after["reported_currency"], flag.after["expected_currency"]) == ("USD", "INR")


async def test_stripe_sessions_by_intent_id(engine):
    order = new_order_token()
    _, intent = await session_of(engine, order, gateway="stripe")
    assert (await report(engine, intent, gateway="razorpay")).kind == "unknown_session"
    result = await report(engine, intent, gateway="stripe", payment_id=intent)
    assert (result.kind, result.payment.status) == ("captured", "captured")
    [captured] = await events(engine, order, "checkout.payment.captured")
    assert (captured["gateway"], captured["gateway_order_id"], captured["gateway_payment_id"]) == ("stripe", intent, intent)


async def test_unknown_gateway_order_and_pending_reports(engine):
    unknown = await report(engine, "order_NoSuchOrder001")
    assert (unknown.kind, unknown.flagged, unknown.payment) == ("unknown_session", True, None)
    flagged = await count_rows(engine, audit_log, audit_log.c.entity_id == "razorpay:order_NoSuchOrder001",
                               audit_log.c.flagged.is_(True))
    assert flagged == 1

    order = new_order_token()
    _, gateway_order = await session_of(engine, order)
    assert (await report(engine, gateway_order, "pending")).kind == "ignored"
    assert await payment_subjects(engine, order) == []


async def test_needs_an_open_unit_of_work(engine):
    with pytest.raises(RuntimeError):
        await apply_payment_outcome(UnitOfWork(engine, PLUMBING), PaymentRepository(),
                                    GatewayReport("razorpay", "order_X", "pay_X", "captured", 1, "INR"),
                                    source="webhook", actor="t")
