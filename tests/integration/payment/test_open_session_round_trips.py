"""What OpenSession costs in statements, and that its one-statement claim keeps every guarantee of
the locked read-then-insert it stands in front of: the first call of an attempt sends one
statement on an autocommit connection, open_attempt(), which takes the order's lock and inserts
only if no other attempt of the order is open; a retry, a waiter, a refused attempt, a free order
and an expired order are decided as before from the order's attempts, under the same lock."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from common import locks
from payment_svc.tables import payment_sessions
from tests.support.payments import count_rows, fails_with, new_order_token, open_session, order_expiry, payment_row
from tests.support.round_trips import sent_statements
from tests.support.tokens import new_user


async def test_the_first_call_claims_by_one_statement_under_the_orders_lock(stack, engine):
    """open_attempt() on its own (no BEGIN, no COMMIT); the gateway's call; BEGIN; the UPDATE;
    audit and outbox with the COMMIT."""
    order = new_order_token()

    with sent_statements(engine) as sent:
        session = await open_session(stack, order, new_user())

    assert [s.autocommit for s in sent] == [True, False, False]
    assert '"payment".open_attempt(' in sent[0].sql and sent[1].sql.startswith("UPDATE payment.payment_sessions")
    assert sent[2].sql.startswith("WITH audit AS")
    row = await payment_row(engine, session.payment_token)
    assert (row.gateway_order_id, row.status, row.leased_until) == (session.gateway_order_id, "pending", None)


async def test_a_retry_of_an_opened_attempt_is_answered_from_its_row(stack, engine):
    user, order = new_user(), new_order_token()
    first = await open_session(stack, order, user)

    with sent_statements(engine) as sent:
        again = await open_session(stack, order, user)

    assert again == first
    # open_attempt() inserts nothing; one read finds the row opened: no transaction, no lock held
    assert [s.autocommit for s in sent] == [True, True] and sent[1].sql.startswith("SELECT")


async def test_the_claim_sees_another_attempt_that_went_in_while_it_waited_for_the_lock(stack, engine):
    """Another opener holds the order's lock and is inserting attempt 2: the claim of attempt 1
    waits for its commit, then sees that open attempt and refuses, as the read under the lock did:
    open_attempt()'s INSERT runs on a snapshot taken after the lock was granted. (With the lock
    taken inside the INSERT's own statement instead, attempt 1 goes in too: tried, and caught here.)"""
    user, order = new_user(), new_order_token()
    high, low = locks.lock_ids(f"payment-order:{order}")
    async with engine.connect() as other_opener:
        await other_opener.execute(text("SELECT pg_advisory_xact_lock(:h, :l)"), {"h": high, "l": low})
        await other_opener.execute(text(
            "INSERT INTO payment_sessions (token, order_token, attempt, user_id, gateway, amount, currency, status, "
            "expires_at, order_expires_at, created_at, updated_at) VALUES (gen_random_uuid(), :o, 2, :u, 'razorpay', "
            "1770.00, 'INR', 'pending', now() + interval '30 minutes', :e, now(), now())"),
            {"o": order, "u": user, "e": order_expiry()})
        claim = asyncio.create_task(fails_with(open_session(stack, order, user, attempt=1), 2102))
        await asyncio.sleep(0.3)
        assert not claim.done()  # waiting for the order's lock
        await other_opener.commit()
    await claim

    assert await count_rows(engine, payment_sessions, payment_sessions.c.order_token == order) == 1
