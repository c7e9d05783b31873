"""An Idempotency-Key belongs to the user who sent it (Stripe's rule): another user's request with
the same key is a request of its own, never an answer stored for someone else."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from order_svc.tables import idempotency_keys
from tests.integration.order.conftest import OrderStack, fails_with, rows
from tests.support.tokens import new_user


async def test_the_same_key_from_another_user_makes_a_separate_order(stack: OrderStack) -> None:
    key, first_user, second_user = str(uuid.uuid4()), new_user(), new_user()
    first_cart = stack.fakes.cart.add_cart(user_id=first_user)
    second_cart = stack.fakes.cart.add_cart(user_id=second_user)

    first = await stack.place(first_user, first_cart, key)
    second = await stack.place(second_user, second_cart, key)

    assert second.order_token != first.order_token
    assert (second.user_id, second.cart_token) == (second_user, second_cart)
    assert second.payment.payment_token != first.payment.payment_token
    replayed = await stack.place(first_user, first_cart, key)
    assert replayed == first
    owners = await rows(stack.engine, select(idempotency_keys.c.user_id, idempotency_keys.c.order_token)
                        .where(idempotency_keys.c.key == key))
    assert sorted((r.user_id, r.order_token) for r in owners) == sorted(
        [(first_user, first.order_token), (second_user, second.order_token)])
    assert stack.fakes.cart.carts[first_cart].converted_by == first.order_token
    assert stack.fakes.cart.carts[second_cart].converted_by == second.order_token


async def test_another_user_replaying_a_key_and_body_does_not_get_the_first_users_order(stack: OrderStack) -> None:
    key, owner, stranger = str(uuid.uuid4()), new_user(), new_user()
    guest_cart = stack.fakes.cart.add_cart()  # a guest cart: its first order makes it the owner's
    await stack.place(owner, guest_cart, key)

    # the same key and the same body: a key shared across users would hand back the owner's order
    detail = await fails_with(stack.place(stranger, guest_cart, key), 1102)

    assert detail.message == "this cart belongs to another user"
