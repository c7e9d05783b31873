"""Orders over real gRPC and real PostgreSQL: order_svc → (fake, in-process, real gRPC) cart_svc
CartCheckout and payment_svc PaymentSessions.

Covers the failures users of other checkouts complain about most: charging twice on a refresh
(idempotency keys, double submits), coupons past their limit, and retries after a failure; and
what order_svc promises its callees: a deadline and bounded retries per call, and no database
connection held while it waits on them.
"""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

import grpc
import pytest
from sqlalchemy import select

from checkout.v1 import order_pb2
from common.errors import CheckoutError, ErrorCode
from common.grpc_errors import detail_of
from order_svc.progress import PaymentOutcome
from order_svc.tables import idempotency_keys, order_placements, orders, plumbing
from tests.integration.order.conftest import OrderStack, count, fails_with, rows
from tests.support.fake_internal_services import line
from tests.support.tokens import bearer, new_user


async def test_an_order_converts_the_cart_and_opens_a_payment_session_for_its_total(stack: OrderStack) -> None:
    user = new_user()
    cart = stack.fakes.cart.add_cart(user_id=user)

    order = await stack.place(user, cart, billing={"country": "IN", "state": "KA"}, payment_method="card")

    assert order.status == "awaiting_payment" and order.user_id == user and order.cart_token == cart
    assert order.total == "4718.82" and [t.name for t in order.taxes] == ["IGST"]
    assert order.payment.gateway == "razorpay" and order.payment.gateway_order_id.startswith("order_")
    assert order.payment.amount == order.total and order.payment.currency == "INR" and order.payment.checkout_url
    assert stack.fakes.cart.carts[cart].converted_by == order.order_token
    [request] = stack.fakes.payments.requests
    assert (request.attempt, request.user_id, request.payment_method) == (1, user, "card")
    again = await stack.stub.GetOrder(order_pb2.GetOrderRequest(order_token=order.order_token),
                                      metadata=bearer(stack.settings, user))
    assert again == order
    [row] = await rows(stack.engine, select(orders).where(orders.c.order_token == order.order_token))
    assert row.items == [line()] and row.payment["payment_token"] == order.payment.payment_token
    assert row.billing == {"country": "IN", "state": "KA"} and row.payment_attempt == 1
    subjects = [r.subject for r in await rows(stack.engine, select(plumbing.outbox.c.subject)
                                              .where(plumbing.outbox.c.aggregate_id == order.order_token)
                                              .order_by(plumbing.outbox.c.seq))]
    assert subjects == ["checkout.order.created", "checkout.order.awaiting_payment"]


async def test_an_order_needs_a_user_and_a_usable_cart(stack: OrderStack) -> None:
    user = new_user()
    await fails_with(stack.stub.CreateOrder(order_pb2.CreateOrderRequest(cart_token=str(uuid.uuid4()))), 1101)
    await fails_with(stack.place(user, str(uuid.uuid4())), 1001)
    detail = await fails_with(stack.place(user, "nope", gateway="paypal"), 1000)
    assert list(detail.validation_messages) == ["cart_token: must be a UUID", "gateway: one of razorpay, stripe"]
    await fails_with(stack.place(user, stack.fakes.cart.add_cart(user_id=user, empty=True)), 1004)
    someone_elses = stack.fakes.cart.add_cart(user_id=new_user())
    await fails_with(stack.place(user, someone_elses), 1102)
    assert await count(stack.engine, orders, orders.c.user_id == user) == 0


async def test_the_same_key_and_body_replays_and_another_body_is_2005(stack: OrderStack) -> None:
    user, key = new_user(), str(uuid.uuid4())
    cart = stack.fakes.cart.add_cart(user_id=user)

    first = await stack.place(user, cart, key)
    second = await stack.place(user, cart, key)

    assert second == first
    await fails_with(stack.place(user, cart, key, gateway="stripe"), 2005)
    assert len(stack.fakes.cart.calls) == 1 and len(stack.fakes.payments.requests) == 1


async def test_concurrent_requests_with_one_key_make_one_order_and_one_gateway_order(stack: OrderStack) -> None:
    user, key = new_user(), str(uuid.uuid4())
    cart = stack.fakes.cart.add_cart(user_id=user)
    stack.fakes.cart.delay = 0.2  # the first request is still converting when the others arrive

    results = await asyncio.gather(*(stack.place(user, cart, key) for _ in range(5)), return_exceptions=True)

    succeeded = [r for r in results if isinstance(r, order_pb2.Order)]
    in_flight = [detail_of(r).code for r in results if isinstance(r, grpc.aio.AioRpcError)]  # type: ignore[union-attr]
    assert succeeded and set(in_flight) <= {2006} and len(succeeded) + len(in_flight) == 5
    assert len({order.order_token for order in succeeded}) == 1
    assert await count(stack.engine, orders, orders.c.cart_token == cart) == 1
    assert len(stack.fakes.payments.gateway_orders(succeeded[0].order_token)) == 1
    assert await stack.place(user, cart, key) == succeeded[0]  # and the retry of a 2006 gets the answer


async def test_an_order_paid_before_step_5_is_the_keys_answer(stack: OrderStack, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Step 5 finishes the key in the statement that moves the order; a capture that came first
    leaves nothing to move, and the key's answer is then the order paid."""
    user, key = new_user(), str(uuid.uuid4())
    cart = stack.fakes.cart.add_cart(user_id=user)
    open_session = stack.fakes.payments.open_session

    async def and_the_capture_comes_first(request):  # type: ignore[no-untyped-def]
        session = await open_session(request)
        outcome = PaymentOutcome(order_token=request.order_token, payment_token=session.payment_token, attempt=1,
                                 status="captured", amount=Decimal(request.amount), currency=request.currency)
        assert await stack.parts.progress.payment_captured(outcome) == "paid"
        return session

    monkeypatch.setattr(stack.fakes.payments, "open_session", and_the_capture_comes_first)
    first = await stack.place(user, cart, key)

    assert first.status == "paid"
    audit = plumbing.audit_log
    actions = await rows(stack.engine, select(audit.c.action, audit.c.after).where(
        audit.c.entity_id == first.order_token).order_by(audit.c.id))
    assert [row.action for row in actions] == ["created", "status:paid"]  # paid from pending
    assert actions[1].after["invoice"].startswith("INV")  # its tax invoice, in the same audit row
    [stored] = await rows(stack.engine, select(idempotency_keys).where(idempotency_keys.c.key == key))
    assert (stored.recovery_point, stored.locked_at, stored.response_code) == ("finished", None, 0)
    assert await stack.place(user, cart, key) == first


async def test_a_double_submit_of_one_cart_without_a_key_is_one_order(stack: OrderStack) -> None:
    user = new_user()
    cart = stack.fakes.cart.add_cart(user_id=user)
    stack.fakes.cart.delay = stack.fakes.payments.delay = 0.05

    results = await asyncio.gather(*(stack.place(user, cart) for _ in range(4)))

    assert len({order.order_token for order in results}) == 1
    assert len({order.payment.payment_token for order in results}) == 1
    assert await count(stack.engine, orders, orders.c.cart_token == cart) == 1
    states = sorted(r.state for r in await rows(stack.engine, select(order_placements.c.state)
                                                 .where(order_placements.c.cart_token == cart)))
    assert states == ["placed", "superseded", "superseded", "superseded"]
    assert len(stack.fakes.payments.sessions) == 1


async def test_twenty_concurrent_orders_on_a_coupon_limited_to_three(stack: OrderStack) -> None:
    code = f"LIM{uuid.uuid4().hex[:8].upper()}"
    stack.fakes.cart.coupon_limits[code] = 3
    users = [new_user() for _ in range(20)]
    carts = [stack.fakes.cart.add_cart(user_id=user, discount_code=code, discount_amount="399.90") for user in users]

    results = await asyncio.gather(*(stack.place(user, cart) for cart, user in zip(carts, users, strict=True)),
                                   return_exceptions=True)

    placed = [r for r in results if isinstance(r, order_pb2.Order)]
    refused = [detail_of(r).code for r in results if isinstance(r, grpc.aio.AioRpcError)]  # type: ignore[union-attr]
    assert len(placed) == 3 and refused == [2004] * 17
    assert await count(stack.engine, orders, orders.c.cart_token.in_(carts)) == 3
    assert await count(stack.engine, order_placements, order_placements.c.cart_token.in_(carts),
                       order_placements.c.state == "refused") == 17
    assert stack.fakes.cart.held(code) == 3 and len(stack.fakes.payments.sessions) == 3


async def test_orders_are_only_for_their_owner(stack: OrderStack) -> None:
    user = new_user()
    order = await stack.place(user, stack.fakes.cart.add_cart(user_id=user))
    request = order_pb2.GetOrderRequest(order_token=order.order_token)
    await fails_with(stack.stub.GetOrder(request), 1101)
    await fails_with(stack.stub.GetOrder(request, metadata=bearer(stack.settings, new_user())), 1102)
    await fails_with(stack.stub.GetOrder(order_pb2.GetOrderRequest(order_token=str(uuid.uuid4())),
                                         metadata=bearer(stack.settings, user)), 2101)


async def test_a_new_attempt_only_after_the_live_session_failed(stack: OrderStack) -> None:
    user = new_user()
    order = await stack.place(user, stack.fakes.cart.add_cart(user_id=user), return_url="http://localhost:5173/back")
    attempt = order_pb2.CreatePaymentAttemptRequest(order_token=order.order_token)
    refusal = await fails_with(stack.stub.CreatePaymentAttempt(attempt, metadata=bearer(stack.settings, user)), 2102)
    assert refusal.message == "a payment session of this order is still open"  # payment_svc's own words
    await fails_with(stack.stub.CreatePaymentAttempt(attempt, metadata=bearer(stack.settings, new_user())), 1102)
    stack.fakes.payments.set_status(order.order_token, 1, "failed")

    second = await stack.stub.CreatePaymentAttempt(attempt, metadata=bearer(stack.settings, user))

    assert second.payment_token != order.payment.payment_token and second.status == "pending"
    assert second.amount == order.total
    assert stack.fakes.payments.requests[-1].return_url == "http://localhost:5173/back"  # back to the same page
    now = await stack.stub.GetOrder(order_pb2.GetOrderRequest(order_token=order.order_token),
                                    metadata=bearer(stack.settings, user))
    assert now.payment == second and now.status == "awaiting_payment"


# -- the calls to cart_svc and payment_svc ----------------------------------------------------------------

async def test_a_callee_that_is_briefly_down_is_retried(stack: OrderStack) -> None:
    user = new_user()
    stack.fakes.cart.unavailable = 2
    stack.fakes.payments.unavailable = 1

    order = await stack.place(user, stack.fakes.cart.add_cart(user_id=user))

    assert order.status == "awaiting_payment"
    assert [rpc for rpc, _ in stack.fakes.cart.calls] == ["ConvertCart"] * 3  # the same order token each time
    assert len({token for _, token in stack.fakes.cart.calls}) == 1
    assert len(stack.fakes.payments.requests) == 2 and len(stack.fakes.payments.sessions) == 1


async def test_a_callee_that_stays_down_is_4001_and_the_key_lets_the_retry_resume(stack: OrderStack) -> None:
    user, key = new_user(), str(uuid.uuid4())
    cart = stack.fakes.cart.add_cart(user_id=user)
    stack.fakes.payments.unavailable = 100

    detail = await fails_with(stack.place(user, cart, key), 4001)

    assert detail.retryable and detail.message == "the payment service is unavailable"
    assert 1 < len(stack.fakes.payments.requests) <= 3  # bounded retries
    stack.fakes.payments.unavailable = 0
    order = await stack.place(user, cart, key)  # at once: a retryable failure ends the key's lease
    assert order.status == "awaiting_payment" and len(stack.fakes.cart.calls) == 1
    assert await count(stack.engine, orders, orders.c.cart_token == cart) == 1


@pytest.mark.parametrize("call_timeouts", [{"order_payment_call_timeout": 0.5}])
async def test_a_callee_past_the_deadline_is_4001(stack: OrderStack, call_timeouts: dict[str, float]) -> None:
    user = new_user()
    stack.fakes.payments.delay = 5.0

    started = asyncio.get_running_loop().time()
    await fails_with(stack.place(user, stack.fakes.cart.add_cart(user_id=user)), 4001)

    assert asyncio.get_running_loop().time() - started < 2.0  # one deadline covers the call and its retries
    assert not stack.fakes.payments.sessions  # the callee's work was cancelled with the call


async def test_no_database_connection_is_held_while_a_callee_works(stack: OrderStack) -> None:
    user = new_user()
    seen: list[int] = []
    pool = stack.engine.pool
    cart_core, payment_core = stack.fakes.cart, stack.fakes.payments
    convert, open_session = cart_core.convert, payment_core.open_session

    async def watched_convert(**kwargs):  # type: ignore[no-untyped-def]
        seen.append(pool.checkedout())  # type: ignore[attr-defined]
        return await convert(**kwargs)

    async def watched_open(request):  # type: ignore[no-untyped-def]
        seen.append(pool.checkedout())  # type: ignore[attr-defined]
        return await open_session(request)

    cart_core.convert = watched_convert  # type: ignore[method-assign]
    payment_core.open_session = watched_open  # type: ignore[method-assign]
    await stack.place(user, cart_core.add_cart(user_id=user), str(uuid.uuid4()))

    assert seen == [0, 0]


async def test_a_final_error_is_stored_with_the_key_and_replayed(stack: OrderStack) -> None:
    user, key = new_user(), str(uuid.uuid4())
    cart = stack.fakes.cart.add_cart(user_id=user)
    stack.fakes.cart.refusal = CheckoutError(ErrorCode.INVALID_COUPON, validation_messages=["code: coupon has expired"])

    first = await fails_with(stack.place(user, cart, key), 2004)
    stack.fakes.cart.refusal = None
    again = await fails_with(stack.place(user, cart, key), 2004)

    assert list(again.validation_messages) == list(first.validation_messages) == ["code: coupon has expired"]
    [stored] = await rows(stack.engine, select(idempotency_keys).where(idempotency_keys.c.key == key))
    assert (stored.recovery_point, stored.response_code, stored.locked_at) == ("finished", 2004, None)
    assert await count(stack.engine, orders, orders.c.cart_token == cart) == 0
    assert len(stack.fakes.cart.calls) == 1
