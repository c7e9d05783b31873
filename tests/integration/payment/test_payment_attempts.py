"""What OpenSession takes from order_svc instead of reading the order: the owner, the amount, the
order's expiry (a session never outlives it), and one open attempt per order, over real gRPC,
PostgreSQL and the gateway emulator."""

from __future__ import annotations

import asyncio
import datetime
from decimal import Decimal

import grpc
from sqlalchemy import text

from common.clock import parse_rfc3339, utc_now
from common.grpc_errors import detail_of
from payment_svc.tables import payment_sessions
from tests.support.payments import (
    audit_rows,
    count_rows,
    events,
    fails_with,
    new_order_token,
    open_session,
    order_expiry,
    payment_row,
)
from tests.support.tokens import new_user
from tests.support.webhooks import settled

MINUTE = datetime.timedelta(minutes=1)


async def test_the_session_keeps_what_order_svc_said(stack, engine):
    user, order = new_user(), new_order_token()
    order_expires_at = order_expiry(2 * 60 * MINUTE)
    session = await open_session(stack, order, user, amount="499.00", payment_method="upi",
                                 order_expires_at=order_expires_at)

    row = await payment_row(engine, session.payment_token)
    assert (row.user_id, row.order_token, row.attempt, row.payment_method) == (user, order, 1, "upi")
    assert (row.amount, row.currency, row.order_expires_at) == (Decimal("499.00"), "INR", parse_rfc3339(order_expires_at))
    # the contract's 30 minutes, from when the gateway order exists
    assert datetime.timedelta(minutes=29) < row.expires_at - row.created_at <= datetime.timedelta(minutes=30, seconds=5)
    [opened] = await events(engine, order, "checkout.payment.session_opened")
    assert opened.pop("occurred_at").endswith("Z")
    assert opened == {"payment_token": session.payment_token, "order_token": order, "user_id": user, "attempt": 1,
                      "gateway": "razorpay", "gateway_order_id": session.gateway_order_id, "gateway_payment_id": "",
                      "status": "pending", "amount": "499.00", "currency": "INR", "source": "", "reason": "",
                      "expires_at": session.expires_at, "checkout_url": session.checkout_url}


async def test_a_session_never_outlives_its_order(stack, engine):
    user, order = new_user(), new_order_token()
    order_expires_at = order_expiry(10 * MINUTE)
    session = await open_session(stack, order, user, order_expires_at=order_expires_at)
    assert session.expires_at == order_expires_at
    row = await payment_row(engine, session.payment_token)
    assert row.expires_at == row.order_expires_at == parse_rfc3339(order_expires_at)

    # and the sweeper expires it with the order, not 30 minutes later
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE payment_sessions SET order_expires_at = now() - interval '1 second', "
                                "expires_at = now() - interval '1 second' WHERE token = :t"), {"t": session.payment_token})
    await stack.parts.sweeper.sweep_once()
    assert (await payment_row(engine, session.payment_token)).status == "expired"
    [expired] = await events(engine, order, "checkout.payment.expired")
    assert (expired["payment_token"], expired["source"]) == (session.payment_token, "sweeper")


async def test_an_expired_order_opens_nothing(stack, engine):
    user, order = new_user(), new_order_token()
    detail = await fails_with(open_session(stack, order, user, order_expires_at=order_expiry(-MINUTE)), 2102)
    assert "expired" in detail.message
    assert await count_rows(engine, payment_sessions, payment_sessions.c.order_token == order) == 0


async def test_attempt_2_waits_until_attempt_1_failed(hooks, engine):
    user, order = new_user(), new_order_token()
    first = await open_session(hooks, order, user)

    detail = await fails_with(open_session(hooks, order, user, attempt=2), 2102)
    assert "a payment session of this order is still open" in detail.message
    assert await count_rows(engine, payment_sessions, payment_sessions.c.order_token == order) == 1
    assert await open_session(hooks, order, user) == first  # attempt 1 itself is still answered

    await asyncio.to_thread(hooks.emulator.fail, first.gateway_order_id)
    await settled(hooks.emulator, first.gateway_order_id, 1)
    assert (await payment_row(engine, first.payment_token)).status == "failed"
    second = await open_session(hooks, order, user, attempt=2)
    assert second.payment_token != first.payment_token and second.gateway_order_id != first.gateway_order_id
    assert [e["attempt"] for e in await events(engine, order, "checkout.payment.session_opened")] == [1, 2]
    await fails_with(open_session(hooks, order, user, attempt=3), 2102)  # now attempt 2 is the open one


async def expire(engine, payment_token: str) -> None:
    """Time passes: the session is past its expiry."""
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE payment_sessions SET expires_at = now() - interval '1 second' WHERE token = :t"),
                           {"t": payment_token})


async def test_attempt_2_opens_once_attempt_1_expired(stack, engine):
    user, order = new_user(), new_order_token()
    first = await open_session(stack, order, user)
    await fails_with(open_session(stack, order, user, attempt=2), 2102)
    await expire(engine, first.payment_token)
    await stack.parts.sweeper.sweep_once()
    assert (await payment_row(engine, first.payment_token)).status == "expired"
    second = await open_session(stack, order, user, attempt=2)
    assert (second.status, (await payment_row(engine, second.payment_token)).attempt) == ("pending", 2)


async def test_attempt_2_opens_once_attempt_1_is_past_its_expiry_before_the_sweeper_came(stack, engine):
    user, order = new_user(), new_order_token()
    first = await open_session(stack, order, user)
    await expire(engine, first.payment_token)
    second = await open_session(stack, order, user, attempt=2)
    assert second.status == "pending"
    assert (await payment_row(engine, first.payment_token)).status == "pending"  # the sweeper's, later


async def test_two_attempts_at_once_open_one_session(stack, engine):
    user, order = new_user(), new_order_token()
    results = await asyncio.gather(*(open_session(stack, order, user, attempt=n) for n in (1, 2, 3)),
                                   return_exceptions=True)
    opened = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(opened) == 1 and len(refused) == 2, results
    assert {detail_of(r).code for r in refused} == {2102}
    assert await count_rows(engine, payment_sessions, payment_sessions.c.order_token == order) == 1
    assert [r.action for r in await audit_rows(engine, opened[0].payment_token)] == ["session_opened"]


async def test_a_retry_after_the_order_expired_still_answers_the_open_session(stack, engine):
    """A retry of an attempt that opened is answered from its row: the order's expiry was checked
    when it opened, and the session itself never outlives it."""
    user, order = new_user(), new_order_token()
    first = await open_session(stack, order, user, order_expires_at=order_expiry(MINUTE))
    again = await open_session(stack, order, user, order_expires_at=order_expiry(-MINUTE))
    assert again == first
    assert parse_rfc3339(first.expires_at) <= utc_now() + MINUTE
