"""Issue 16: the round trips order_svc makes to PostgreSQL for one checkout, statement by
statement (tests/support/round_trips.py counts them: a BEGIN or a lone COMMIT is one too). A
change that adds one to this path should have to say so here."""

from __future__ import annotations

import uuid

from tests.integration.order.conftest import OrderStack
from tests.support.round_trips import round_trips
from tests.support.tokens import new_user


async def test_creating_an_order_with_a_new_key(stack: OrderStack) -> None:
    user, key = new_user(), str(uuid.uuid4())
    cart = stack.fakes.cart.add_cart(user_id=user)
    with round_trips(stack.engine) as trips:
        await stack.place(user, cart, key)
    assert trips == [
        "WITH idempotency_keys",  # the key and the placement (step 1): one statement, autocommit
        "BEGIN", "WITH order_placements", "WITH -",  # the order (step 3); its event and audit row + COMMIT
        "BEGIN", "WITH orders", "WITH -",  # awaiting_payment with the key's answer (one statement); event, audit
    ]


async def test_replaying_a_key(stack: OrderStack) -> None:
    user, key = new_user(), str(uuid.uuid4())
    cart = stack.fakes.cart.add_cart(user_id=user)
    first = await stack.place(user, cart, key)
    with round_trips(stack.engine) as trips:
        assert await stack.place(user, cart, key) == first
    assert trips == ["WITH idempotency_keys", "SELECT idempotency_keys"]  # refused (finished), then read: no BEGIN
