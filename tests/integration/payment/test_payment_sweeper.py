"""The session-expiry sweeper against real PostgreSQL: overdue sessions expire once, whoever
sweeps, each with one audit row and one checkout.payment.expired event. Orders are order_svc's:
the sweeper never touches one (its role cannot even read them)."""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import subprocess
import sys
import uuid
from decimal import Decimal

from sqlalchemy import insert

from common.clock import utc_now
from common.uow import uow_factory
from payment_svc.repository import PaymentRepository
from payment_svc.tables import PLUMBING, payment_sessions
from payment_svc.tuning import SweepTuning
from payment_svc.workers.sweeper import SessionSweeper, sweeper_worker
from tests.conftest import ROOT
from tests.support.payments import audit_rows, events, new_order_token, payment_row, payment_subjects
from tests.support.tokens import new_user
from tests.support.webhooks import eventually

AGO = datetime.timedelta(minutes=-1)


async def session_row(engine, order_token: str, *, status: str = "pending", expires_in: datetime.timedelta = AGO,
                      attempt: int = 1, opened: bool = True) -> str:
    token = str(uuid.uuid4())
    async with engine.begin() as conn:
        await conn.execute(insert(payment_sessions).values(
            token=token, order_token=order_token, attempt=attempt, user_id=new_user(), gateway="razorpay",
            gateway_order_id=f"order_{uuid.uuid4().hex[:14]}" if opened else None, amount=Decimal("1770.00"),
            currency="INR", status=status, expires_at=utc_now() + expires_in,
            order_expires_at=utc_now() + datetime.timedelta(hours=1)))
    return token


def sweeper(engine, batch: int = 100) -> SessionSweeper:
    return SessionSweeper(uow_factory(engine, PLUMBING), PaymentRepository(), batch=batch)


async def test_overdue_pending_sessions_expire_and_nothing_else_does(engine):
    order = new_order_token()
    overdue = await session_row(engine, order, attempt=1)
    never_opened = await session_row(engine, order, attempt=2, opened=False)
    fresh = await session_row(engine, order, attempt=3, expires_in=datetime.timedelta(minutes=10))
    captured_order = new_order_token()
    captured = await session_row(engine, captured_order, status="captured")

    report = await sweeper(engine).sweep_once()
    assert report.sessions_expired >= 2

    assert [(await payment_row(engine, t)).status for t in (overdue, never_opened, fresh, captured)] == [
        "expired", "expired", "pending", "captured"]
    expired = await events(engine, order, "checkout.payment.expired")
    assert sorted(e["payment_token"] for e in expired) == sorted([overdue, never_opened])
    assert {(e["status"], e["source"]) for e in expired} == {("expired", "sweeper")}
    assert sorted(e["attempt"] for e in expired) == [1, 2]
    assert [r.action for r in await audit_rows(engine, overdue)] == ["status:expired"]
    assert await payment_subjects(engine, captured_order) == []
    await sweeper(engine).sweep_once()  # a second pass finds nothing of these left to do
    assert len(await events(engine, order, "checkout.payment.expired")) == 2


async def test_concurrent_sweepers_expire_each_row_once(engine):
    orders = [new_order_token() for _ in range(6)]
    sessions = [await session_row(engine, order) for order in orders]
    await asyncio.gather(*(sweeper(engine, batch=2).sweep_once() for _ in range(3)))

    for order, session in zip(orders, sessions, strict=True):
        assert (await payment_row(engine, session)).status == "expired"
        assert len(await events(engine, order, "checkout.payment.expired")) == 1
        assert [r.action for r in await audit_rows(engine, session)] == ["status:expired"]


async def test_the_sweeper_worker_runs_until_stopped(engine):
    session = await session_row(engine, new_order_token())
    worker = sweeper_worker(sweeper(engine, batch=10), SweepTuning(interval_s=0.05, batch=10)).start()
    try:
        await eventually(lambda: _status_is(engine, session, "expired"), what="the worker expired the session")
    finally:
        await worker.stop(timeout=5)
    assert worker.task is not None and worker.task.done() and not worker.task.cancelled()


async def _status_is(engine, token: str, status: str) -> bool:
    return (await payment_row(engine, token)).status == status


async def test_command_line_once(settings, engine):
    order = new_order_token()
    session = await session_row(engine, order)
    env = {**os.environ, "DATABASE_URL": settings.database_url, "LOG_LEVEL": "WARNING"}
    done = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "payment_svc.workers.sweeper", "--once"],
                                   cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(report) == {"sessions_expired"} and report["sessions_expired"] >= 1
    assert (await payment_row(engine, session)).status == "expired"
