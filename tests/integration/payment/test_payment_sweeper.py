"""The payment sweeper against real PostgreSQL: overdue sessions and unpaid orders expire once,
whoever sweeps, and an expired order gives its coupon back in the same transaction."""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import subprocess
import sys
import uuid
from decimal import Decimal

from sqlalchemy import insert, select

from cart_svc import redemptions
from common.clock import utc_now
from common.tables import coupon_redemptions, coupons, payment_tokens
from payment_svc.sweeper import run_sweeper, sweep_once
from tests.conftest import ROOT
from tests.support.tokens import new_user
from tests.support.payments import audit_rows, events, new_order, order_status, payment_row

AGO = datetime.timedelta(minutes=-1)


async def session_row(engine, order_token: str, *, status: str = "pending", expires_in: datetime.timedelta = AGO,
                      attempt: int = 1, opened: bool = True) -> str:
    token = str(uuid.uuid4())
    async with engine.begin() as conn:
        await conn.execute(insert(payment_tokens).values(
            token=token, order_token=order_token, attempt=attempt, gateway="razorpay",
            gateway_order_id=f"order_{uuid.uuid4().hex[:14]}" if opened else None, amount=Decimal("1770.00"),
            currency="INR", status=status, expires_at=utc_now() + expires_in))
    return token


async def test_overdue_pending_sessions_expire_and_nothing_else_does(engine):
    user = new_user()
    order = await new_order(engine, user, status="awaiting_payment")
    overdue = await session_row(engine, order, attempt=1)
    never_opened = await session_row(engine, order, attempt=2, opened=False)
    fresh = await session_row(engine, order, attempt=3, expires_in=datetime.timedelta(minutes=10))
    captured = await session_row(engine, await new_order(engine, user), status="captured")

    report = await sweep_once(engine)
    assert report.sessions_expired >= 2

    assert [(await payment_row(engine, t)).status for t in (overdue, never_opened, fresh, captured)] == [
        "expired", "expired", "pending", "captured"]
    assert await order_status(engine, order) == "awaiting_payment"  # a new attempt may follow
    expired = await events(engine, order, "checkout.payment.expired")
    assert sorted(e["payment_token"] for e in expired) == sorted([overdue, never_opened])
    assert [r.action for r in await audit_rows(engine, overdue)] == ["status:expired"]
    await sweep_once(engine)  # a second pass finds nothing of these left to do
    assert len(await events(engine, order, "checkout.payment.expired")) == 2


async def test_unpaid_orders_past_their_expiry_expire_and_release_their_coupon(engine):
    user = new_user()
    code = f"SWEEP{uuid.uuid4().hex[:8].upper()}"
    async with engine.begin() as conn:
        await conn.execute(insert(coupons).values(code=code, kind="percent", value=Decimal("10"), max_redemptions=5))
    overdue = {status: await new_order(engine, user, status=status, expires_in=AGO, discount_code=code)
               for status in ("pending", "awaiting_payment", "payment_failed")}
    paid = await new_order(engine, user, status="paid", expires_in=AGO)
    fresh = await new_order(engine, user, status="awaiting_payment", discount_code=code)
    async with engine.begin() as conn:
        for order in [*overdue.values(), fresh]:
            await redemptions.redeem(conn, code=code, user_id=user, order_token=order)

    report = await sweep_once(engine)
    assert report.orders_expired >= 3 and report.coupons_released >= 3

    for order in overdue.values():
        assert await order_status(engine, order) == "expired"
        [event] = await events(engine, order, "checkout.order.expired")
        assert event["previous"] in overdue
        assert [r.action for r in await audit_rows(engine, order)] == ["status:expired"]
    assert await order_status(engine, paid) == "paid"
    assert await order_status(engine, fresh) == "awaiting_payment"
    async with engine.connect() as conn:
        count = (await conn.execute(select(coupons.c.redeemed_count).where(coupons.c.code == code))).scalar_one()
        held = (await conn.execute(select(coupon_redemptions.c.order_token).where(
            coupon_redemptions.c.code == code, coupon_redemptions.c.status == "held"))).scalars().all()
    assert count == 1 and [str(t) for t in held] == [fresh]


async def test_concurrent_sweepers_expire_each_row_once(settings, engine):
    user = new_user()
    orders = [await new_order(engine, user, status="awaiting_payment", expires_in=AGO) for _ in range(6)]
    sessions = [await session_row(engine, order) for order in orders]
    await asyncio.gather(*(sweep_once(engine, batch=2) for _ in range(3)))

    for order, session in zip(orders, sessions):
        assert (await payment_row(engine, session)).status == "expired"
        assert await order_status(engine, order) == "expired"
        assert len(await events(engine, order, "checkout.payment.expired")) == 1
        assert len(await events(engine, order, "checkout.order.expired")) == 1


async def test_background_sweeper_runs_until_stopped(engine):
    user = new_user()
    order = await new_order(engine, user, status="awaiting_payment")
    session = await session_row(engine, order)
    stop = asyncio.Event()
    task = asyncio.create_task(run_sweeper(engine, interval_s=0.05, batch=10, stop=stop))
    for _ in range(100):
        if (await payment_row(engine, session)).status == "expired":
            break
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert (await payment_row(engine, session)).status == "expired"


async def test_command_line_once(settings, engine):
    user = new_user()
    order = await new_order(engine, user, status="pending", expires_in=AGO)
    env = {**os.environ, "DATABASE_URL": settings.database_url, "LOG_LEVEL": "WARNING"}
    done = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "payment_svc.sweeper", "--once"], cwd=ROOT,
                                   env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(report) == {"sessions_expired", "orders_expired", "coupons_released"} and report["orders_expired"] >= 1
    assert await order_status(engine, order) == "expired"
