"""The placement recovery worker and the unpaid-order sweeper on real PostgreSQL, releasing carts
over real gRPC (cart_svc's CartCheckout is the in-process fake)."""

from __future__ import annotations

import asyncio
import datetime
import uuid

from sqlalchemy import insert, select, update

from common.clock import utc_now
from order_svc.tables import order_placements, orders, plumbing
from order_svc.workers.sweepers import OrderExpiry, PlacementRecovery
from tests.integration.order.conftest import OrderStack, fails_with, rows
from tests.support.tokens import new_user

LONG_AGO = datetime.timedelta(hours=1)


async def left_converting(stack: OrderStack, *, converted: bool, coupon: str = "") -> tuple[str, str]:
    """A placement a crashed order_svc left between its steps 1 and 3 (its cart converted or not)."""
    user, order_token = new_user(), str(uuid.uuid4())
    cart = stack.fakes.cart.add_cart(user_id=user, discount_code=coupon)
    started = utc_now() - LONG_AGO
    async with stack.engine.begin() as conn:
        await conn.execute(insert(order_placements).values(order_token=order_token, cart_token=cart, user_id=user,
                                                           state="converting", created_at=started, updated_at=started))
    if converted:
        await stack.fakes.cart.convert(cart_token=cart, order_token=order_token, user_id=user, billing={})
    return order_token, cart


async def placement_state(stack: OrderStack, order_token: str) -> str:
    [row] = await rows(stack.engine, select(order_placements.c.state).where(order_placements.c.order_token == order_token))
    return str(row.state)


async def test_an_abandoned_placement_gives_back_its_cart_and_coupon_once(stack: OrderStack) -> None:
    order_token, cart = await left_converting(stack, converted=True, coupon="SAVE10")
    young, _ = await left_converting(stack, converted=True)
    async with stack.engine.begin() as conn:  # this one's client may still be on its way
        await conn.execute(update(order_placements).where(order_placements.c.order_token == young)
                           .values(created_at=utc_now()))

    released = await stack.parts.recovery.one_pass()

    assert order_token in released and young not in released
    assert await placement_state(stack, order_token) == "released"
    assert await placement_state(stack, young) == "converting"
    assert (order_token, True, "abandoned") in stack.fakes.cart.released
    assert stack.fakes.cart.carts[cart].converted_by is None and stack.fakes.cart.held("SAVE10") == 0
    assert order_token not in await stack.parts.recovery.one_pass()
    assert [r.action for r in await rows(stack.engine, select(plumbing.audit_log.c.action)
                                         .where(plumbing.audit_log.c.entity_id == order_token)
                                         .order_by(plumbing.audit_log.c.id))] == ["abandoned", "released"]


async def test_two_replicas_release_an_abandoned_placement_once(stack: OrderStack) -> None:
    tokens = [(await left_converting(stack, converted=True))[0] for _ in range(6)]
    stack.fakes.cart.delay = 0.05
    settings = stack.settings
    other = PlacementRecovery(stack.parts.uow, stack.parts.repository, stack.parts.cart,
                              timeout=datetime.timedelta(seconds=settings.order_placement_timeout),
                              claim_lease=datetime.timedelta(seconds=60), batch=settings.order_sweep_batch)

    first, second = await asyncio.gather(stack.parts.recovery.one_pass(), other.one_pass())

    mine = [token for token in first + second if token in tokens]
    assert sorted(mine) == sorted(tokens)  # each released by exactly one of them
    assert sorted(t for t, _, _ in stack.fakes.cart.released if t in tokens) == sorted(tokens)


async def test_a_release_that_failed_is_tried_again_after_its_claim_went_stale(stack: OrderStack) -> None:
    order_token, cart = await left_converting(stack, converted=True)
    stack.fakes.cart.unavailable = 100  # cart_svc down for this pass

    assert order_token not in await stack.parts.recovery.one_pass()
    assert await placement_state(stack, order_token) == "abandoned"
    stack.fakes.cart.unavailable = 0
    assert order_token not in await stack.parts.recovery.one_pass()  # claimed a moment ago: not yet
    async with stack.engine.begin() as conn:
        await conn.execute(update(order_placements).where(order_placements.c.order_token == order_token)
                           .values(updated_at=utc_now() - LONG_AGO))

    assert order_token in await stack.parts.recovery.one_pass()
    assert await placement_state(stack, order_token) == "released"
    assert stack.fakes.cart.carts[cart].converted_by is None


async def test_a_late_step_3_for_an_abandoned_placement_is_refused_and_the_retry_starts_afresh(stack: OrderStack) -> None:
    user, key = new_user(), str(uuid.uuid4())
    cart = stack.fakes.cart.add_cart(user_id=user, discount_code="LATE")
    stack.fakes.cart.hold_answers = asyncio.Event()
    placing = asyncio.create_task(stack.place(user, cart, key))
    await asyncio.wait_for(stack.fakes.cart.answer_held.wait(), 10)  # converted; the answer is on its way
    async with stack.engine.begin() as conn:  # … so slowly that the worker takes the placement for abandoned
        await conn.execute(update(order_placements).where(order_placements.c.cart_token == cart)
                           .values(created_at=utc_now() - LONG_AGO))
    [abandoned] = [token for token in await stack.parts.recovery.one_pass()
                   if token in {t for _, t in stack.fakes.cart.calls}]
    stack.fakes.cart.hold_answers.set()
    stack.fakes.cart.hold_answers = None

    await fails_with(placing, 4001)  # step 3 finds its placement given up: nothing is made of it

    assert await placement_state(stack, abandoned) == "released" and stack.fakes.cart.held("LATE") == 0
    order = await stack.place(user, cart, key)  # the retry with the key starts afresh
    assert order.status == "awaiting_payment" and order.order_token != abandoned
    assert len(await rows(stack.engine, select(orders.c.order_token).where(orders.c.cart_token == cart))) == 1
    assert stack.fakes.cart.held("LATE") == 1


async def test_unpaid_orders_expire_and_say_so(stack: OrderStack) -> None:
    user = new_user()
    order = await stack.place(user, stack.fakes.cart.add_cart(user_id=user))
    async with stack.engine.begin() as conn:
        await conn.execute(update(orders).where(orders.c.order_token == order.order_token)
                           .values(expires_at=utc_now() - datetime.timedelta(seconds=1)))
    sweeper = OrderExpiry(stack.parts.uow, stack.parts.repository, batch=2)

    assert order.order_token in await sweeper.one_pass()
    assert order.order_token not in await sweeper.one_pass()

    [row] = await rows(stack.engine, select(orders.c.status).where(orders.c.order_token == order.order_token))
    assert row.status == "expired"
    [event] = await rows(stack.engine, select(plumbing.outbox.c.payload).where(
        plumbing.outbox.c.aggregate_id == order.order_token, plumbing.outbox.c.subject == "checkout.order.expired"))
    assert event.payload["previous"] == "awaiting_payment" and event.payload["user_id"] == user


async def test_two_replicas_expire_each_unpaid_order_once(stack: OrderStack) -> None:
    placed = []
    for _ in range(5):
        user = new_user()
        placed.append((await stack.place(user, stack.fakes.cart.add_cart(user_id=user))).order_token)
    async with stack.engine.begin() as conn:
        await conn.execute(update(orders).where(orders.c.order_token.in_(placed))
                           .values(expires_at=utc_now() - datetime.timedelta(seconds=1)))
    replicas = [OrderExpiry(stack.parts.uow, stack.parts.repository, batch=2) for _ in range(2)]

    first, second = await asyncio.gather(*(replica.one_pass() for replica in replicas))

    mine = [token for token in first + second if token in placed]
    assert sorted(mine) == sorted(placed)  # each expired by exactly one of them
    events = await rows(stack.engine, select(plumbing.outbox.c.aggregate_id).where(
        plumbing.outbox.c.aggregate_id.in_(placed), plumbing.outbox.c.subject == "checkout.order.expired"))
    assert sorted(event.aggregate_id for event in events) == sorted(placed)
