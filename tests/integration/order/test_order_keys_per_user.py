"""An Idempotency-Key belongs to the user who sent it (Stripe's rule): another user's request with
the same key is a request of its own, never an answer stored for someone else."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from checkout.v1 import cart_pb2
from common.tables import carts, idempotency_keys
from tests.integration.test_order_grpc import (  # noqa: F401 (fixtures)
    PLAN, a_cart, emulator, fails_with, order_request, stubs, with_key,
)
from tests.support.tokens import new_user


async def test_the_same_key_from_another_user_makes_a_separate_order(stubs, settings, engine):
    cart_stub, order_stub = stubs
    key, first_user, second_user = str(uuid.uuid4()), new_user(), new_user()
    first_cart = await a_cart(cart_stub, settings, first_user)
    second_cart = await a_cart(cart_stub, settings, second_user)

    first = await order_stub.CreateOrder(order_request(first_cart), metadata=with_key(settings, first_user, key))
    second = await order_stub.CreateOrder(order_request(second_cart), metadata=with_key(settings, second_user, key))

    assert second.order_token != first.order_token
    assert (second.user_id, second.cart_token) == (second_user, second_cart)
    assert second.payment.payment_token != first.payment.payment_token
    replayed = await order_stub.CreateOrder(order_request(first_cart), metadata=with_key(settings, first_user, key))
    assert replayed == first
    async with engine.connect() as conn:
        owners = (await conn.execute(select(idempotency_keys.c.user_id, idempotency_keys.c.order_token)
                                     .where(idempotency_keys.c.key == key))).all()
        statuses = (await conn.execute(select(carts.c.status).where(carts.c.token.in_([first_cart, second_cart])))).scalars().all()
    assert sorted(owners) == sorted([(first_user, first.order_token), (second_user, second.order_token)])
    assert statuses == ["converted", "converted"]


async def test_another_user_replaying_a_key_and_body_does_not_get_the_first_users_order(stubs, settings):
    cart_stub, order_stub = stubs
    key, owner, stranger = str(uuid.uuid4()), new_user(), new_user()
    guest_cart = await cart_stub.CreateCart(cart_pb2.CreateCartRequest(items=[cart_pb2.CartItemInput(plan_id=PLAN, quantity=1)]))
    await order_stub.CreateOrder(order_request(guest_cart.token), metadata=with_key(settings, owner, key))

    # the same key and the same body: a key shared across users would hand back the owner's order
    detail = await fails_with(order_stub.CreateOrder(order_request(guest_cart.token), metadata=with_key(settings, stranger, key)), 1102)

    assert detail.message == "this cart belongs to another user"
