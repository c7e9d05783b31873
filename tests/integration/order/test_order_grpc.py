"""Orders over real gRPC: order_svc → payment_svc → the gateway emulator, real PostgreSQL.

Covers the failures users of other checkouts complain about most: charging twice on a refresh
(idempotency keys, double submits), coupons past their limit, and retries after a failure.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from decimal import Decimal

import grpc
import pytest
from sqlalchemy import func, insert, select, update

from cart_svc.app import build_registration as cart_registration
from cart_svc.cart_cache import build_cart_cache
from checkout.v1 import cart_pb2, cart_pb2_grpc, order_pb2, order_pb2_grpc
from common.grpc_errors import detail_of
from common.tables import coupon_redemptions, coupons, orders, payment_tokens
from gateway_emulator.runner import start_emulator
from order_svc.app import build_registration as order_registration
from order_svc.payment_sessions_client import PaymentSessionsClient
from payment_svc.app import build_registration as payment_registration
from tests.support.grpc_servers import serving, serving_at
from tests.support.tokens import bearer, new_user

PLAN = "7a1e0000-0000-4000-8000-000000000103"  # 3999.00 INR


@pytest.fixture(scope="module")
def emulator():
    with start_emulator(port=0) as running:
        yield running


@pytest.fixture
async def stubs(settings, engine, emulator):
    local = dataclasses.replace(settings, razorpay_base_url=emulator.url, stripe_base_url=emulator.url)
    cache = build_cart_cache(local)  # real Redis: the order must close the cart's cached copy too
    async with serving_at(local, payment_registration(engine, local)) as (payment_address, _):
        sessions = PaymentSessionsClient(payment_address)
        async with serving(local, cart_registration(engine, local, cache)) as cart_channel, \
                serving(local, order_registration(engine, local, sessions, cache)) as order_channel:
            yield cart_pb2_grpc.CartServiceStub(cart_channel), order_pb2_grpc.OrderServiceStub(order_channel)
        await sessions.close()
    await cache.close()


async def fails_with(call, code: int):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    detail = detail_of(caught.value)
    assert detail is not None and detail.code == code, (caught.value.code(), detail)
    return detail


async def a_cart(cart_stub, settings, user: str, quantity: int = 1, coupon: str | None = None) -> str:
    cart = await cart_stub.CreateCart(cart_pb2.CreateCartRequest(items=[cart_pb2.CartItemInput(plan_id=PLAN, quantity=quantity)]),
                                      metadata=bearer(settings, user))
    if coupon:
        await cart_stub.ApplyCoupon(cart_pb2.ApplyCouponRequest(token=cart.token, code=coupon), metadata=bearer(settings, user))
    return cart.token


def order_request(cart_token: str, **more) -> order_pb2.CreateOrderRequest:
    return order_pb2.CreateOrderRequest(cart_token=cart_token, **more)


def with_key(settings, user: str, key: str):
    return (*bearer(settings, user), ("idempotency-key", key))


async def test_order_opens_a_payment_session_for_its_total(stubs, settings):
    cart_stub, order_stub = stubs
    user = new_user()
    token = await a_cart(cart_stub, settings, user)
    await cart_stub.GetCart(cart_pb2.GetCartRequest(token=token), metadata=bearer(settings, user))  # now cached
    order = await order_stub.CreateOrder(order_request(token, billing={"country": "IN", "state": "KA"}),
                                         metadata=bearer(settings, user))
    assert order.status == "awaiting_payment" and order.user_id == user
    assert order.total == "4718.82" and [t.name for t in order.taxes] == ["CGST", "SGST"]
    assert order.payment.gateway == "razorpay" and order.payment.gateway_order_id.startswith("order_")
    assert order.payment.amount == order.total and order.payment.currency == "INR" and order.payment.checkout_url
    again = await order_stub.GetOrder(order_pb2.GetOrderRequest(order_token=order.order_token), metadata=bearer(settings, user))
    assert again.payment.payment_token == order.payment.payment_token
    converted = await cart_stub.GetCart(cart_pb2.GetCartRequest(token=token), metadata=bearer(settings, user))
    assert converted.status == "converted"


async def test_order_needs_a_user_and_a_usable_cart(stubs, settings, engine):
    cart_stub, order_stub = stubs
    user = new_user()
    await fails_with(order_stub.CreateOrder(order_request(str(uuid.uuid4()))), 1101)
    await fails_with(order_stub.CreateOrder(order_request(str(uuid.uuid4())), metadata=bearer(settings, user)), 1001)
    await fails_with(order_stub.CreateOrder(order_request("nope", gateway="paypal"), metadata=bearer(settings, user)), 1000)
    empty = await cart_stub.CreateCart(cart_pb2.CreateCartRequest(), metadata=bearer(settings, user))
    await fails_with(order_stub.CreateOrder(order_request(empty.token), metadata=bearer(settings, user)), 1004)
    someone_elses = await a_cart(cart_stub, settings, new_user())
    await fails_with(order_stub.CreateOrder(order_request(someone_elses), metadata=bearer(settings, user)), 1102)


async def test_same_key_same_body_replays_and_another_body_is_2005(stubs, settings, emulator):
    cart_stub, order_stub = stubs
    user, key = new_user(), str(uuid.uuid4())
    token = await a_cart(cart_stub, settings, user)
    first = await order_stub.CreateOrder(order_request(token), metadata=with_key(settings, user, key))
    second = await order_stub.CreateOrder(order_request(token), metadata=with_key(settings, user, key))
    assert second == first
    await fails_with(order_stub.CreateOrder(order_request(token, gateway="stripe"), metadata=with_key(settings, user, key)), 2005)


async def test_concurrent_requests_with_one_key_make_one_order_and_one_gateway_order(stubs, settings, emulator, engine):
    cart_stub, order_stub = stubs
    user, key = new_user(), str(uuid.uuid4())
    token = await a_cart(cart_stub, settings, user)
    results = await asyncio.gather(*(order_stub.CreateOrder(order_request(token), metadata=with_key(settings, user, key))
                                     for _ in range(5)), return_exceptions=True)
    succeeded = [r for r in results if isinstance(r, order_pb2.Order)]
    in_flight = [detail_of(r).code for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert succeeded and set(in_flight) <= {2006}
    assert len({order.order_token for order in succeeded}) == 1
    async with engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(orders).where(orders.c.cart_token == token))).scalar() == 1
    gateway_orders = [o for o in emulator.state()["razorpay"]["orders"] if o.get("receipt", "").startswith(succeeded[0].order_token)]
    assert len(gateway_orders) == 1


async def test_double_submit_of_one_cart_without_a_key_is_one_order(stubs, settings, engine):
    cart_stub, order_stub = stubs
    user = new_user()
    token = await a_cart(cart_stub, settings, user)
    results = await asyncio.gather(*(order_stub.CreateOrder(order_request(token), metadata=bearer(settings, user)) for _ in range(4)))
    assert len({order.order_token for order in results}) == 1
    async with engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(orders).where(orders.c.cart_token == token))).scalar() == 1


async def test_twenty_concurrent_orders_on_a_coupon_limited_to_three(stubs, settings, engine):
    cart_stub, order_stub = stubs
    code = f"LIM{uuid.uuid4().hex[:8].upper()}"
    async with engine.begin() as conn:
        await conn.execute(insert(coupons).values(code=code, kind="percent", value=Decimal("10"), max_redemptions=3))
    users = [new_user() for _ in range(20)]
    carts = [await a_cart(cart_stub, settings, user, coupon=code) for user in users]
    results = await asyncio.gather(*(order_stub.CreateOrder(order_request(cart), metadata=bearer(settings, user))
                                     for cart, user in zip(carts, users)), return_exceptions=True)
    placed = [r for r in results if isinstance(r, order_pb2.Order)]
    refused = [detail_of(r).code for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(placed) == 3 and refused == [2004] * 17
    async with engine.connect() as conn:
        held = (await conn.execute(select(func.count()).select_from(coupon_redemptions)
                                   .where(coupon_redemptions.c.code == code, coupon_redemptions.c.status == "held"))).scalar()
        count = (await conn.execute(select(coupons.c.redeemed_count).where(coupons.c.code == code))).scalar()
    assert held == count == 3


async def test_orders_are_only_for_their_owner(stubs, settings):
    cart_stub, order_stub = stubs
    user = new_user()
    order = await order_stub.CreateOrder(order_request(await a_cart(cart_stub, settings, user)), metadata=bearer(settings, user))
    request = order_pb2.GetOrderRequest(order_token=order.order_token)
    await fails_with(order_stub.GetOrder(request), 1101)
    await fails_with(order_stub.GetOrder(request, metadata=bearer(settings, new_user())), 1102)
    await fails_with(order_stub.GetOrder(order_pb2.GetOrderRequest(order_token=str(uuid.uuid4())), metadata=bearer(settings, user)), 2101)


async def test_new_attempt_only_after_the_live_session_failed(stubs, settings, emulator, engine):
    cart_stub, order_stub = stubs
    user = new_user()
    order = await order_stub.CreateOrder(order_request(await a_cart(cart_stub, settings, user), return_url="https://app.example/back"),
                                         metadata=bearer(settings, user))
    assert "app.example" in order.payment.checkout_url
    attempt = order_pb2.CreatePaymentAttemptRequest(order_token=order.order_token)
    await fails_with(order_stub.CreatePaymentAttempt(attempt, metadata=bearer(settings, user)), 2102)
    await fails_with(order_stub.CreatePaymentAttempt(attempt, metadata=bearer(settings, new_user())), 1102)
    # a failure reaches us by webhook or browser callback (their own tests); here it is written directly
    async with engine.begin() as conn:
        await conn.execute(update(payment_tokens).where(payment_tokens.c.token == order.payment.payment_token).values(status="failed"))
    second = await order_stub.CreatePaymentAttempt(attempt, metadata=bearer(settings, user))
    assert second.payment_token != order.payment.payment_token and second.status == "pending"
    assert second.amount == order.total
    assert "app.example" in second.checkout_url  # the new attempt returns the student to the same page
