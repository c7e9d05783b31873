"""order_svc holds no pooled connection while cart_svc converts the cart or payment_svc opens the
session (issue 11, item 5): with each call held in the fake service, the pool has nothing
checked out; the order is placed once the calls answer."""

from __future__ import annotations

import asyncio
import time
import uuid

from tests.integration.order.conftest import OrderStack
from tests.support.tokens import new_user


async def test_no_connection_is_checked_out_during_convert_cart_or_open_session(stack: OrderStack) -> None:
    user = new_user()
    cart = stack.fakes.cart.add_cart(user_id=user)
    stack.fakes.cart.hold_answers = asyncio.Event()
    stack.fakes.payments.delay = 1.0
    placing = asyncio.create_task(stack.place(user, cart, str(uuid.uuid4())))

    await asyncio.wait_for(stack.fakes.cart.answer_held.wait(), 10)  # inside ConvertCart
    assert stack.engine.pool.checkedout() == 0
    stack.fakes.cart.hold_answers.set()
    stack.fakes.cart.hold_answers = None

    deadline = time.monotonic() + 10
    while not stack.fakes.payments.requests:  # inside OpenSession (its answer takes a second)
        assert time.monotonic() < deadline and not placing.done()
        await asyncio.sleep(0.01)
    assert stack.engine.pool.checkedout() == 0

    order = await placing
    assert order.status == "awaiting_payment" and order.payment.payment_token
