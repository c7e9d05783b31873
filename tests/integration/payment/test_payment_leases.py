"""No connection and no lock held while a gateway answers (issue 11, item 5): OpenSession takes a
lease on the attempt's row (`leased_until`, committed before the gateway call), so while a slow
gateway create is in flight payment_svc's pool has nothing checked out and PostgreSQL holds no
advisory lock of ours; callers of the same attempt at once wait for the row and answer the one
session (one gateway order); a lease nobody gives back makes a caller answer 4001 within its
bound; a free order (0.00) opens no gateway session and is captured at once."""

from __future__ import annotations

import asyncio
import datetime
import time

from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from payment_svc.tables import payment_sessions
from tests.support.payments import (
    api_requests,
    audit_rows,
    count_rows,
    events,
    fails_with,
    new_order_token,
    open_request,
    open_session,
    payment_row,
    payment_subjects,
)
from tests.support.tokens import new_user

CONCURRENT = 20


async def until(predicate, timeout: float = 10.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not (value := await predicate()):
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)
    return value


async def advisory_locks_of_payment(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(text(
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND a.usename = current_user AND a.pid <> pg_backend_pid() "
            "AND a.datname = current_database()"))).scalar_one()  # other tests' databases are not ours


async def test_nothing_is_held_while_the_gateway_answers_and_concurrent_callers_get_one_session(stack, engine):
    stack.emulator.set_faults("razorpay", receipt_idempotent=False, latency_ms=1500)
    user, order = new_user(), new_order_token()
    first = asyncio.create_task(open_session(stack, order, user))

    async def create_in_flight() -> bool:
        return bool(api_requests(stack.emulator, "POST", "/v1/orders", in_flight=True))

    await until(create_in_flight)
    # the gateway is answering: the lease is on the row, and nothing of ours waits on a connection
    assert engine.pool.checkedout() == 0
    assert await advisory_locks_of_payment(engine) == 0
    async with engine.connect() as conn:
        leased = (await conn.execute(text("SELECT leased_until FROM payment_sessions WHERE order_token = :o"),
                                     {"o": order})).scalar_one()
    assert leased is not None
    others = [asyncio.create_task(open_session(stack, order, user)) for _ in range(CONCURRENT - 1)]
    sessions = await asyncio.gather(first, *others)

    assert len({s.payment_token for s in sessions}) == 1 and len({s.gateway_order_id for s in sessions}) == 1
    assert await count_rows(engine, payment_sessions, payment_sessions.c.order_token == order) == 1
    assert len(api_requests(stack.emulator, "POST", "/v1/orders")) == 1  # one gateway order for all 20
    assert (await payment_row(engine, sessions[0].payment_token)).leased_until is None  # the lease ended with it
    assert len(await events(engine, order, "checkout.payment.session_opened")) == 1


async def test_a_lease_that_still_runs_makes_a_caller_answer_4001_within_its_bound(stack, engine):
    user, order = new_user(), new_order_token()
    stack.emulator.set_faults("all", down=True)
    await fails_with(open_session(stack, order, user), 4001)  # the row exists, not opened, the lease given back
    [row] = [await payment_row(engine, s) for s in await tokens_of(engine, order)]
    assert (row.gateway_order_id, row.leased_until) == (None, None)
    stack.emulator.set_faults("all", down=False)
    posts = len(api_requests(stack.emulator, "POST", "/v1/orders"))
    async with engine.begin() as conn:  # as if another call had just taken it (and hung)
        await conn.execute(update(payment_sessions).where(payment_sessions.c.token == row.token)
                           .values(leased_until=datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=5)))
    started = time.monotonic()
    await fails_with(stack.sessions.OpenSession(open_request(order, user), timeout=2.0), 4001)
    assert time.monotonic() - started < 2.0  # within the caller's deadline (less its margin)
    assert len(api_requests(stack.emulator, "POST", "/v1/orders")) == posts  # it never reached a gateway

    async with engine.begin() as conn:  # the lease has run out: the next caller takes it over
        await conn.execute(update(payment_sessions).where(payment_sessions.c.token == row.token)
                           .values(leased_until=datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=1)))
    session = await open_session(stack, order, user)
    assert session.payment_token == str(row.token) and session.gateway_order_id


async def tokens_of(engine: AsyncEngine, order: str) -> list[str]:
    async with engine.connect() as conn:
        return [str(t) for t in (await conn.execute(text("SELECT token FROM payment_sessions WHERE order_token = :o"),
                                                    {"o": order})).scalars()]


async def test_a_free_order_opens_no_gateway_session_and_is_captured_at_once(stack, engine):
    user, order = new_user(), new_order_token()
    session = await open_session(stack, order, user, amount="0.00")

    assert (session.gateway, session.status, session.amount, session.gateway_order_id, session.checkout_url) == (
        "none", "captured", "0.00", "", "")
    assert api_requests(stack.emulator) == []  # no gateway heard of it
    assert await payment_subjects(engine, order) == ["checkout.payment.captured"]
    [captured] = await events(engine, order, "checkout.payment.captured")
    assert (captured["payment_token"], captured["status"], captured["source"], captured["amount"]) == (
        session.payment_token, "captured", "free", "0.00")
    assert [(r.action, r.after["source"]) for r in await audit_rows(engine, session.payment_token)] == [
        ("status:captured", "free")]
    assert await open_session(stack, order, user, amount="0.00") == session  # a retry: the same, nothing new
    assert await payment_subjects(engine, order) == ["checkout.payment.captured"]
    await fails_with(open_session(stack, order, user, amount="1.00"), 1000)  # another amount: a new attempt


async def test_both_gateways_down_is_4001_naming_no_exception(stack, engine):
    stack.emulator.set_faults("all", down=True, down_mode="reset")
    detail = await fails_with(open_session(stack, new_order_token(), new_user()), 4001)
    assert detail.message == "no payment gateway is available (razorpay: unavailable; stripe: unavailable)"
