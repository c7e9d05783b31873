"""Reconciliation (payment_svc/workers/reconciler.py) against real PostgreSQL and the real emulator:
a lost webhook still ends in a capture (and its checkout.payment.captured event, which order_svc
consumes), an unpaid session stays pending, and reconcilers running at once (in one process or as
separate `python -m payment_svc.workers.reconciler --once` processes) capture once."""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import subprocess
import sys

import pytest
from sqlalchemy import text

from common.uow import uow_factory
from payment_svc.repository import PaymentRepository
from payment_svc.tables import PLUMBING
from payment_svc.tuning import ReconcileTuning
from payment_svc.workers.reconciler import Reconciler, ReconcileReport
from tests.conftest import ROOT
from tests.support.payments import (
    api_requests,
    audit_rows,
    captured_once,
    events,
    new_order_token,
    open_session,
    payment_row,
)
from tests.support.tokens import new_user
from tests.support.webhooks import eventually, settled

NOW = ReconcileTuning(after_s=0)  # every pending session is due at once


async def reconcile_once(engine, gateways, tuning: ReconcileTuning, *, only=None) -> ReconcileReport:
    reconciler = Reconciler(uow_factory(engine, PLUMBING), PaymentRepository(), gateways, tuning)
    return await reconciler.reconcile_once(only=only)


async def captured_once_by(engine, order: str, session) -> dict:
    """This session is captured, and order_svc has been told exactly once."""
    captured = await captured_once(engine, order)
    assert captured["payment_token"] == session.payment_token
    return captured


async def dropped_payment(hooks, engine, *, gateway: str = "", succeed: bool = True, **pay):
    """An order whose session was paid (or failed) at the gateway while the webhook got lost."""
    user = new_user()
    gateway = "" if gateway == "razorpay" else gateway
    total, currency = ("50.00", "USD") if gateway == "stripe" else ("1770.00", "INR")
    order = new_order_token()
    session = await open_session(hooks, order, user, gateway=gateway, amount=total, currency=currency)
    hooks.emulator.set_faults(session.gateway, webhook_drop=True)
    settle = hooks.emulator.pay if succeed else hooks.emulator.fail
    await asyncio.to_thread(settle, session.gateway_order_id, **pay)
    sent = await settled(hooks.emulator, session.gateway_order_id, 2 if succeed else 1)
    assert {e["state"] for e in sent} == {"dropped"}
    assert (await payment_row(engine, session.payment_token)).status == "pending"
    return user, order, session


def lookups(hooks, session) -> list[dict]:
    path = (f"/v1/orders/{session.gateway_order_id}/payments" if session.gateway == "razorpay"
            else f"/v1/checkout/sessions/{session.gateway_order_id}")
    return [r for r in api_requests(hooks.emulator, "GET") if r["path"] == path]


async def test_a_dropped_razorpay_webhook_is_reconciled_into_a_capture(hooks, engine):
    user, order, session = await dropped_payment(hooks, engine)

    report = await reconcile_once(engine, hooks.gateways, NOW, only=[session.payment_token])
    assert report == ReconcileReport(checked=1, captured=1)
    payment = await payment_row(engine, session.payment_token)
    assert payment.status == "captured" and payment.gateway_payment_id.startswith("pay_")
    captured = await captured_once_by(engine, order, session)
    assert captured["source"] == "reconcile" and captured["user_id"] == user
    assert [r.actor for r in await audit_rows(engine, session.payment_token)
            if r.action == "status:captured"] == ["payment_svc.reconcile"]
    assert len(lookups(hooks, session)) == 1

    # the next pass has nothing to do for it; the webhook arriving late changes nothing either
    assert await reconcile_once(engine, hooks.gateways, NOW, only=[session.payment_token]) == ReconcileReport()
    hooks.emulator.set_faults("razorpay", webhook_drop=False)
    for event in await asyncio.to_thread(lambda: hooks.emulator.webhooks(order_id=session.gateway_order_id)["events"]):
        hooks.emulator.control("POST", f"webhooks/{event['id']}/redeliver")
    await eventually(lambda: _all_answered(hooks, 2), what="late webhooks")
    assert [d.status for d in hooks.receiver.deliveries] == [200, 200]
    assert len(await events(engine, order, "checkout.payment.captured")) == 1
    assert len(lookups(hooks, session)) == 1


async def _all_answered(hooks, count: int) -> bool:
    return len(hooks.receiver.deliveries) >= count and all(d.status for d in hooks.receiver.deliveries)


async def test_a_dropped_stripe_webhook_is_reconciled_into_a_capture(hooks, engine):
    user, order, session = await dropped_payment(hooks, engine, gateway="stripe")
    report = await reconcile_once(engine, hooks.gateways, NOW, only=[session.payment_token])
    assert report == ReconcileReport(checked=1, captured=1)
    captured = await captured_once_by(engine, order, session)
    assert captured["source"] == "reconcile" and captured["gateway_payment_id"].startswith("pi_")
    assert captured["gateway_order_id"] == session.gateway_order_id
    assert len(lookups(hooks, session)) == 1


async def test_an_unpaid_session_stays_pending(hooks, engine):
    user = new_user()
    order = new_order_token()
    session = await open_session(hooks, order, user)
    stripe_order = new_order_token()
    stripe_session = await open_session(hooks, stripe_order, user, gateway="stripe", amount="50.00", currency="USD")
    tokens = [session.payment_token, stripe_session.payment_token]

    # too young to be due: not even looked up
    assert await reconcile_once(engine, hooks.gateways, ReconcileTuning(after_s=3600), only=tokens) == ReconcileReport()
    assert lookups(hooks, session) == [] and lookups(hooks, stripe_session) == []

    report = await reconcile_once(engine, hooks.gateways, NOW, only=tokens)
    assert report == ReconcileReport(checked=2, unchanged=2)
    for token, order_token in ((session.payment_token, order), (stripe_session.payment_token, stripe_order)):
        assert (await payment_row(engine, token)).status == "pending"
        assert await events(engine, order_token, "checkout.payment.captured") == []
        assert [r.action for r in await audit_rows(engine, token) if r.action.startswith(("status:", "outcome:"))] == []
    assert len(lookups(hooks, session)) == 1 and len(lookups(hooks, stripe_session)) == 1


@pytest.mark.parametrize("gateway", ["razorpay", "stripe"])
async def test_a_failure_whose_webhook_was_lost_fails_the_session(hooks, engine, gateway):
    user, order, session = await dropped_payment(hooks, engine, gateway=gateway, succeed=False)
    report = await reconcile_once(engine, hooks.gateways, NOW, only=[session.payment_token])
    assert report == ReconcileReport(checked=1, failed=1)
    assert (await payment_row(engine, session.payment_token)).status == "failed"
    [failed] = await events(engine, order, "checkout.payment.failed")
    assert (failed["payment_token"], failed["source"]) == (session.payment_token, "reconcile")


async def test_an_amount_mismatch_found_by_reconcile_is_flagged_not_paid(hooks, engine):
    user, order, session = await dropped_payment(hooks, engine, amount=100)
    report = await reconcile_once(engine, hooks.gateways, NOW, only=[session.payment_token])
    assert report == ReconcileReport(checked=1, flagged=1)
    assert (await payment_row(engine, session.payment_token)).status == "pending"
    assert await events(engine, order, "checkout.payment.captured") == []
    assert len(await events(engine, order, "checkout.payment.flagged")) == 1
    [flagged] = [r for r in await audit_rows(engine, session.payment_token) if r.flagged]
    assert flagged.action == "outcome:flagged" and flagged.after["source"] == "reconcile"


async def test_a_gateway_outage_leaves_the_session_for_the_next_pass(hooks, engine):
    user, order, session = await dropped_payment(hooks, engine)
    hooks.emulator.set_faults("razorpay", down=True)
    report = await reconcile_once(engine, hooks.gateways, NOW, only=[session.payment_token])
    assert report == ReconcileReport(unavailable=1)
    assert (await payment_row(engine, session.payment_token)).status == "pending"

    hooks.emulator.set_faults("razorpay", down=False)
    report = await reconcile_once(engine, hooks.gateways, NOW, only=[session.payment_token])
    assert report == ReconcileReport(checked=1, captured=1)
    await captured_once_by(engine, order, session)


async def test_a_session_expired_by_the_sweeper_is_still_captured(hooks, engine):
    """The customer paid in the last moments; the sweeper expired the session before anyone heard."""
    user, order, session = await dropped_payment(hooks, engine)
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE payment_sessions SET status = 'expired', expires_at = now() - interval '1 minute' "
                                "WHERE token = :t"), {"t": session.payment_token})
    report = await reconcile_once(engine, hooks.gateways, NOW, only=[session.payment_token])
    assert report == ReconcileReport(checked=1, captured=1)
    await captured_once_by(engine, order, session)

    # past the grace period an expired session is no longer looked up
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE payment_sessions SET status = 'expired', expires_at = now() - interval '1 day' "
                                "WHERE token = :t"), {"t": session.payment_token})
    assert await reconcile_once(engine, hooks.gateways, NOW, only=[session.payment_token]) == ReconcileReport()


async def test_two_reconcilers_at_once_capture_once(hooks, engine):
    paid = [await dropped_payment(hooks, engine) for _ in range(4)]
    tokens = [session.payment_token for _, _, session in paid]

    reports = await asyncio.gather(*(reconcile_once(engine, hooks.gateways, NOW, only=tokens) for _ in range(2)))
    assert sum(r.captured for r in reports) == 4
    assert sum(r.captured + r.skipped for r in reports) == 8  # each session: one captured it, the other stood aside
    for _, order, session in paid:
        await captured_once_by(engine, order, session)
        assert len(lookups(hooks, session)) == 1  # and only one of them asked the gateway


def reconcile_process(hooks, settings, tokens: list[str]) -> subprocess.Popen:
    env = {**os.environ, "DATABASE_URL": settings.database_url, "RAZORPAY_BASE_URL": hooks.emulator.url,
           "STRIPE_BASE_URL": hooks.emulator.url, "LOG_LEVEL": "WARNING", "PYTHONPATH": f"{ROOT}:{ROOT / 'gen'}"}
    args = [sys.executable, "-m", "payment_svc.workers.reconciler", "--once", "--after", "0"]
    for token in tokens:
        args += ["--payment-token", token]
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


async def test_two_reconcile_processes_at_once_capture_once(hooks, engine, settings):
    paid = [await dropped_payment(hooks, engine) for _ in range(3)]
    paid.append(await dropped_payment(hooks, engine, gateway="stripe"))
    tokens = [session.payment_token for _, _, session in paid]

    processes = [reconcile_process(hooks, settings, tokens) for _ in range(2)]
    outputs = [await asyncio.to_thread(p.communicate, timeout=60) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], outputs
    reports = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    assert sum(r["captured"] for r in reports) == 4, reports
    for _, order, session in paid:
        await captured_once_by(engine, order, session)
        assert len(lookups(hooks, session)) == 1


def test_the_cli_refuses_a_bad_token():
    result = subprocess.run([sys.executable, "-m", "payment_svc.workers.reconciler", "--once", "--payment-token", "nope"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'gen'}"})
    assert result.returncode == 2 and "not a payment token" in result.stderr


async def due_tokens(engine, now) -> set[str]:
    """Every session a pass at `now` would look up (the whole test database: a generous limit)."""
    async with engine.connect() as conn:
        due = await PaymentRepository().due_for_reconcile(
            conn, now=now, pending_before=now, expired_after=now - datetime.timedelta(minutes=15),
            gateways=["razorpay", "stripe"], cursor=None, limit=100_000)
    return {token for _, token, _ in due}


async def test_each_look_up_schedules_the_next_with_backoff_and_a_pass_skips_sessions_not_due(hooks, engine):
    session = await open_session(hooks, new_order_token(), new_user())
    token = session.payment_token
    assert token in await due_tokens(engine, datetime.datetime.now(datetime.UTC))  # never looked up: due

    before = datetime.datetime.now(datetime.UTC)
    assert await reconcile_once(engine, hooks.gateways, NOW, only=[token]) == ReconcileReport(checked=1, unchanged=1)
    row = await payment_row(engine, token)
    # 60 s after the first look-up, less up to 20 % jitter; the lease is over
    assert (row.reconcile_checks, row.leased_until) == (1, None)
    assert before + datetime.timedelta(seconds=48) <= row.next_check_at
    assert row.next_check_at <= datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=60)
    assert token not in await due_tokens(engine, datetime.datetime.now(datetime.UTC))  # a pass now skips it
    assert token in await due_tokens(engine, row.next_check_at)  # and takes it once it is due

    first_due = row.next_check_at
    before = datetime.datetime.now(datetime.UTC)
    assert await reconcile_once(engine, hooks.gateways, NOW, only=[token]) == ReconcileReport(checked=1, unchanged=1)
    row = await payment_row(engine, token)
    assert row.reconcile_checks == 2 and row.next_check_at > first_due
    assert before + datetime.timedelta(seconds=96) <= row.next_check_at  # twice as long: 120 s less ≤ 20 %
    assert row.next_check_at <= datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=120)
    assert len(lookups(hooks, session)) == 2


async def test_a_session_leased_by_another_reconciler_is_skipped(hooks, engine):
    session = await open_session(hooks, new_order_token(), new_user())
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE payment_sessions SET leased_until = now() + interval '1 minute' WHERE token = :t"),
                           {"t": session.payment_token})
    report = await reconcile_once(engine, hooks.gateways, NOW, only=[session.payment_token])
    assert report == ReconcileReport(skipped=1) and lookups(hooks, session) == []
