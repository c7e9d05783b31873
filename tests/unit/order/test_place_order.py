"""The placing saga with fakes (tests/unit/order/fakes.py): its steps and what each leaves behind,
the Idempotency-Key rules, a crash at every fault point followed by the client's retry, the
double submit, and abandoned placements."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest

from common.clock import rfc3339
from common.errors import CheckoutError, ErrorCode
from common.request_context import Caller, caller_var
from order_svc import place_order, stored_responses
from order_svc.commands import OrderRequest
from order_svc.domain.idempotency import fingerprint
from order_svc.progress import PaymentOutcome
from order_svc.views import TaxView
from tests.support.fake_internal_services import line
from tests.unit.order.fakes import KEY_LEASE, ORDER_TTL, PLACEMENT_TIMEOUT, World, world

FAULT_POINTS = ("order_after_placement", "order_after_convert", "order_after_commit", "order_after_session")


class Crash(BaseException):
    """Stands for a SIGKILL at a fault point: nothing after it runs."""


@contextlib.contextmanager
def as_user(user_id: str) -> Iterator[None]:
    token = caller_var.set(Caller(user_id=user_id))
    try:
        yield
    finally:
        caller_var.reset(token)


@contextlib.contextmanager
def crash_at(monkeypatch: pytest.MonkeyPatch, point: str) -> Iterator[None]:
    def fault(name: str) -> None:
        if name == point:
            raise Crash(name)

    with monkeypatch.context() as patch:
        patch.setattr(place_order, "fault_point", fault)
        yield


async def place(w: World, user: str, cart: str, key: str = "", **more: str):  # type: ignore[no-untyped-def]
    with as_user(user):
        return await w.service.create_order(OrderRequest(cart_token=cart, **more), key)


async def refused(call, code: int) -> CheckoutError:  # type: ignore[no-untyped-def]
    with pytest.raises(CheckoutError) as caught:
        await call
    assert caught.value.code.spec.code == code, caught.value
    return caught.value


def new_user() -> str:
    return str(uuid.uuid4())


# -- the steps ------------------------------------------------------------------------------------------

async def test_an_order_is_placed_converted_recorded_and_given_a_payment_session() -> None:
    w, user = world(), new_user()
    cart = w.cart.add_cart(user_id=user)

    view = await place(w, user, cart, return_url="https://app.example/back", payment_method="upi")

    assert (view.status, view.user_id, view.cart_token, view.total, view.currency) == (
        "awaiting_payment", user, cart, "4718.82", "INR")
    order = w.repository.orders[view.order_token]
    assert order.items == [line()] and order.payment_attempt == 1
    assert view.payment is not None and order.payment == view.payment.as_json()
    assert (view.payment.status, view.payment.amount, view.payment.gateway) == ("pending", "4718.82", "razorpay")
    [request] = w.payments.requests
    assert (request.order_token, request.attempt, request.user_id, request.amount, request.currency) == (
        view.order_token, 1, user, "4718.82", "INR")
    assert (request.gateway, request.payment_method, request.return_url) == ("razorpay", "upi", "https://app.example/back")
    assert request.order_expires_at == rfc3339(w.clock.now + ORDER_TTL)
    assert w.subjects(view.order_token) == ["checkout.order.created", "checkout.order.awaiting_payment"]
    created = w.events("checkout.order.created")[0].payload
    assert created["status"] == "pending" and created["user_id"] == user and created["lines"][0]["plan_id"] == line()["plan_id"]
    assert [(a.action, a.after["status"]) for a in w.audits(view.order_token)] == [
        ("created", "pending"), ("status:awaiting_payment", "awaiting_payment")]
    assert w.repository.placements[view.order_token].state == "placed"


async def test_step_5_stores_the_keys_answer_with_the_move_and_it_replays() -> None:
    w, user, key = world(), new_user(), str(uuid.uuid4())
    cart = w.cart.add_cart(user_id=user)
    first = await place(w, user, cart, key)
    row = w.repository.keys[(user, key)]
    assert (row.recovery_point, row.locked_at) == ("finished", None)
    assert stored_responses.replay(row.response_code, row.response_body) == first
    assert await place(w, user, cart, key) == first


async def test_step_5_stores_the_order_as_the_move_returned_it_when_the_foreseen_view_differs(monkeypatch) -> None:
    """The key's answer written with the move is foreseen from the order step 3 recorded; a column
    the move does not set that changed meanwhile shows in the row it returns: that is the answer."""
    w, user, key = world(), new_user(), str(uuid.uuid4())
    cart = w.cart.add_cart(user_id=user)
    open_session = w.payments.open_session

    async def and_the_row_changes(request):  # type: ignore[no-untyped-def]
        order = w.repository.orders[request.order_token]
        w.repository.orders[request.order_token] = dataclasses.replace(order, refunded_amount=Decimal("1.00"))
        return await open_session(request)

    monkeypatch.setattr(w.payments, "open_session", and_the_row_changes)
    first = await place(w, user, cart, key)

    assert (first.status, first.refunded_amount) == ("awaiting_payment", "1.00")
    assert await place(w, user, cart, key) == first


async def test_step_5_finds_the_order_paid_meanwhile_and_stores_it_as_the_answer(monkeypatch) -> None:
    """A capture applied before step 5 (its event came first): no move, the answer is the order paid."""
    w, user, key = world(), new_user(), str(uuid.uuid4())
    cart = w.cart.add_cart(user_id=user)
    open_session = w.payments.open_session

    async def and_the_capture_comes_first(request):  # type: ignore[no-untyped-def]
        session = await open_session(request)
        outcome = PaymentOutcome(order_token=request.order_token, payment_token=session.payment_token, attempt=1,
                                 status="captured", amount=Decimal(request.amount), currency=request.currency)
        assert await w.progress.payment_captured(outcome) == "paid"
        return session

    monkeypatch.setattr(w.payments, "open_session", and_the_capture_comes_first)
    first = await place(w, user, cart, key)

    assert first.status == "paid"
    assert w.subjects(first.order_token) == ["checkout.order.created", "checkout.order.paid"]
    assert await place(w, user, cart, key) == first


async def test_the_order_is_exactly_the_snapshot_that_convert_cart_returned() -> None:
    w, user = world(), new_user()
    lines = [line(1, price="41.20", quantity=2), line(2, plan_id="7a1e0000-0000-4000-8000-000000000101", price="15.05",
                                                      months=1)]
    cart = w.cart.add_cart(user_id=user, lines=lines, currency="USD", exchange_rate="0.01201", subtotal="97.45",
                           discount_code="TENOFF", discount_amount="9.75", tax_amount="15.79",
                           taxes=(TaxView("CGST", "9", "7.89"), TaxView("SGST", "9", "7.90")), total="103.49")

    view = await place(w, user, cart, billing_country="IN", billing_state="KA")

    assert (view.subtotal, view.discount_amount, view.tax_amount, view.total) == ("97.45", "9.75", "15.79", "103.49")
    assert (view.currency, view.exchange_rate, view.discount_code) == ("USD", "0.01201", "TENOFF")
    assert view.taxes == (TaxView("CGST", "9", "7.89"), TaxView("SGST", "9", "7.90"))
    order = w.repository.orders[view.order_token]
    assert order.items == lines and order.billing == {"country": "IN", "state": "KA"}
    assert w.payments.requests[0].amount == "103.49" and w.payments.requests[0].currency == "USD"
    assert [entry["line_no"] for entry in w.events("checkout.order.created")[0].payload["lines"]] == [1, 2]


@pytest.mark.parametrize("code", [ErrorCode.INVALID_COUPON, ErrorCode.CART_EMPTY, ErrorCode.CART_CONVERTED])
async def test_a_refused_conversion_makes_no_order_and_is_the_keys_answer(code: ErrorCode) -> None:
    w, user, key = world(), new_user(), str(uuid.uuid4())
    cart = w.cart.add_cart(user_id=user)
    w.cart.refusal = CheckoutError(code, validation_messages=["code: coupon redemption limit reached"])

    first = await refused(place(w, user, cart, key), code.spec.code)
    w.cart.refusal = None  # the cart would convert now, but the key's answer is stored
    again = await refused(place(w, user, cart, key), code.spec.code)

    assert again.validation_messages == first.validation_messages == ["code: coupon redemption limit reached"]
    assert not w.repository.orders and not w.payments.requests and not w.uow.published
    assert [p.state for p in w.repository.placements.values()] == ["refused"]
    assert len(w.cart.calls) == 1


# -- Idempotency-Key --------------------------------------------------------------------------------------

async def test_the_same_key_and_body_replays_the_answer_and_calls_nothing() -> None:
    w, user, key = world(), new_user(), str(uuid.uuid4())
    cart = w.cart.add_cart(user_id=user)

    first = await place(w, user, cart, key)
    w.clock.advance(minutes=5)
    second = await place(w, user, cart, key)

    assert second == first
    assert len(w.cart.calls) == 1 and len(w.payments.requests) == 1 and len(w.repository.orders) == 1


async def test_the_same_key_with_another_body_is_2005() -> None:
    w, user, key = world(), new_user(), str(uuid.uuid4())
    cart = w.cart.add_cart(user_id=user)
    await place(w, user, cart, key)

    await refused(place(w, user, cart, key, gateway="stripe"), 2005)
    await refused(place(w, user, w.cart.add_cart(user_id=user), key), 2005)


async def test_a_key_in_flight_is_2006_until_its_lease_runs_out_then_the_retry_resumes(monkeypatch) -> None:
    w, user, key = world(), new_user(), str(uuid.uuid4())
    cart = w.cart.add_cart(user_id=user)
    w.repository.keys.clear()
    with as_user(user):  # a request that holds the key, wrote step 1 and died without a word (its lease stays)
        held, started = await w.service._take_key(user, key, _hash(OrderRequest(cart_token=cart)),
                                                  OrderRequest(cart_token=cart))
        assert (held.recovery_point, held.order_token) == ("converting", started)
        assert w.repository.placements[started].state == "converting"

    await refused(place(w, user, cart, key), 2006)
    await refused(place(w, user, cart, key, gateway="stripe"), 2005)  # another body: still 2005, not 2006
    w.clock.advance(seconds=KEY_LEASE.total_seconds() + 1)
    view = await place(w, user, cart, key)

    assert view.status == "awaiting_payment" and len(w.repository.orders) == 1
    assert view.order_token == started  # the retry resumed the placement the dead request started


async def test_a_key_refused_in_flight_then_finished_before_it_is_read_replays_the_answer(monkeypatch) -> None:
    """The claim and the read of a key it refused are two statements (service._take_key): what the
    read finds (the other request's answer, stored in between) is the answer."""
    w, user, key = world(), new_user(), str(uuid.uuid4())
    cart = w.cart.add_cart(user_id=user)
    first = await place(w, user, cart, key)
    row = w.repository.keys[(user, key)]
    answer = (row.recovery_point, row.response_code, row.response_body)
    row.recovery_point, row.response_code, row.response_body, row.locked_at = "order_created", None, None, w.clock()
    claim = w.repository.claim_key

    async def claim_then_the_other_finishes(*args, **kwargs):  # type: ignore[no-untyped-def]
        taken = await claim(*args, **kwargs)
        assert taken is None  # in flight
        (row.recovery_point, row.response_code, row.response_body), row.locked_at = answer, None
        return taken

    monkeypatch.setattr(w.repository, "claim_key", claim_then_the_other_finishes)
    assert await place(w, user, cart, key) == first
    assert len(w.cart.calls) == 1 and len(w.payments.requests) == 1


async def test_a_key_refused_then_deleted_before_it_is_read_is_2006(monkeypatch) -> None:
    w, user, key = world(), new_user(), str(uuid.uuid4())
    cart = w.cart.add_cart(user_id=user)
    await place(w, user, cart, key)
    claim = w.repository.claim_key

    async def claim_then_retention_deletes(*args, **kwargs):  # type: ignore[no-untyped-def]
        taken = await claim(*args, **kwargs)
        w.repository.keys.clear()
        return taken

    monkeypatch.setattr(w.repository, "claim_key", claim_then_retention_deletes)
    await refused(place(w, user, cart, key), 2006)


def _hash(request: OrderRequest) -> str:
    return fingerprint(place_order.CREATE_ORDER, request.canonical())


async def test_a_retryable_failure_is_not_stored_and_the_retry_reuses_the_placement() -> None:
    w, user, key = world(), new_user(), str(uuid.uuid4())
    cart = w.cart.add_cart(user_id=user)
    w.cart.unavailable = 1

    await refused(place(w, user, cart, key), 4001)
    view = await place(w, user, cart, key)  # at once: the failure ended the lease

    assert [rpc for rpc in w.cart.calls] == [("ConvertCart", view.order_token)] * 2
    assert list(w.repository.placements) == [view.order_token]


async def test_a_final_refusal_of_the_payment_session_is_stored_and_the_order_waits_for_expiry() -> None:
    w, user, key = world(), new_user(), str(uuid.uuid4())
    cart = w.cart.add_cart(user_id=user)
    w.payments.refusal = CheckoutError(ErrorCode.VALIDATION_FAILED, validation_messages=["return_url: not allowed"])

    await refused(place(w, user, cart, key), 1000)
    w.payments.refusal = None
    again = await refused(place(w, user, cart, key), 1000)

    assert again.validation_messages == ["return_url: not allowed"]
    [order] = w.repository.orders.values()
    assert order.status == "pending" and len(w.payments.requests) == 1


async def test_keys_belong_to_their_user() -> None:
    w, key, first_user, second_user = world(), str(uuid.uuid4()), new_user(), new_user()
    first_cart, second_cart = w.cart.add_cart(user_id=first_user), w.cart.add_cart(user_id=second_user)

    first = await place(w, first_user, first_cart, key)
    second = await place(w, second_user, second_cart, key)
    stranger = await refused(place(w, second_user, first_cart, str(uuid.uuid4())), 1102)

    assert first.order_token != second.order_token and second.user_id == second_user
    assert await place(w, first_user, first_cart, key) == first
    assert stranger.message == "this cart belongs to another user"
    assert (first_user, key) in w.repository.keys and (second_user, key) in w.repository.keys
    assert w.repository.keys[(second_user, key)].order_token == second.order_token


# -- a crash between two steps ---------------------------------------------------------------------------

@pytest.mark.parametrize("point", FAULT_POINTS)
async def test_a_crash_at_each_point_then_the_retry_with_the_key_makes_one_of_everything(monkeypatch, point) -> None:
    w, user, key = world(), new_user(), str(uuid.uuid4())
    cart = w.cart.add_cart(user_id=user, discount_code="TENOFF")
    with crash_at(monkeypatch, point), pytest.raises(Crash):
        await place(w, user, cart, key)

    view = await place(w, user, cart, key)
    replay = await place(w, user, cart, key)

    assert view.status == "awaiting_payment" and replay == view
    assert list(w.repository.orders) == [view.order_token]
    assert list(w.cart.conversions) == [view.order_token] and w.cart.held("TENOFF") == 1  # one redemption
    assert len(w.payments.gateway_orders(view.order_token)) == 1  # one gateway order
    assert w.subjects(view.order_token) == ["checkout.order.created", "checkout.order.awaiting_payment"]


@pytest.mark.parametrize("point", ["order_after_placement", "order_after_convert"])
async def test_a_crash_before_the_order_exists_without_a_retry_is_released_by_the_recovery_worker(monkeypatch, point) -> None:
    w, user = world(), new_user()
    cart = w.cart.add_cart(user_id=user, discount_code="TENOFF")
    with crash_at(monkeypatch, point), pytest.raises(Crash):
        await place(w, user, cart)
    [placement] = w.repository.placements.values()

    assert await w.recovery.one_pass() == []  # not yet: its client may still be on its way
    w.clock.advance(seconds=PLACEMENT_TIMEOUT.total_seconds() + 1)
    assert await w.recovery.one_pass() == [placement.order_token]
    assert await w.recovery.one_pass() == []

    assert w.repository.placements[placement.order_token].state == "released"
    assert w.cart.released == [(placement.order_token, True, "abandoned")]
    assert w.cart.held("TENOFF") == 0 and w.cart.carts[cart].converted_by is None  # coupon and cart given back
    assert not w.repository.orders
    assert [a.action for a in w.audits(placement.order_token)] == ["abandoned", "released"]
    # the student comes back: the cart converts again, for a new order
    again = await place(w, user, cart)
    assert again.status == "awaiting_payment" and again.order_token != placement.order_token


@pytest.mark.parametrize("point", ["order_after_commit", "order_after_session"])
async def test_a_crash_after_the_order_exists_without_a_retry_ends_in_expiry(monkeypatch, point) -> None:
    w, user = world(), new_user()
    cart = w.cart.add_cart(user_id=user)
    with crash_at(monkeypatch, point), pytest.raises(Crash):
        await place(w, user, cart)
    [order] = w.repository.orders.values()
    w.clock.advance(seconds=ORDER_TTL.total_seconds() + PLACEMENT_TIMEOUT.total_seconds())

    assert await w.recovery.one_pass() == []  # the placement is placed: nothing to release
    assert await w.expiry.one_pass() == [order.order_token]
    assert w.repository.orders[order.order_token].status == "expired"
    assert w.subjects(order.order_token)[-1] == "checkout.order.expired"  # cart_svc releases the coupon on it


# -- the double submit ---------------------------------------------------------------------------------

async def test_a_double_submit_without_a_key_returns_the_first_order() -> None:
    w, user = world(), new_user()
    cart = w.cart.add_cart(user_id=user)

    first = await place(w, user, cart)
    second = await place(w, user, cart)

    assert second.order_token == first.order_token and second.payment == first.payment
    assert len(w.repository.orders) == 1 and len(w.payments.gateway_orders(first.order_token)) == 1
    states = {token: p.state for token, p in w.repository.placements.items()}
    other = next(token for token in states if token != first.order_token)
    assert states == {first.order_token: "placed", other: "superseded"}
    assert w.repository.placements[other].resolved_order_token == first.order_token


async def test_concurrent_double_submits_make_one_order() -> None:
    w, user = world(), new_user()
    cart = w.cart.add_cart(user_id=user)
    w.cart.delay = w.payments.delay = 0.01  # let the requests interleave between their steps

    views = await asyncio.gather(*(place(w, user, cart) for _ in range(4)))

    assert len({view.order_token for view in views}) == 1 and len(w.repository.orders) == 1
    assert len(w.payments.sessions) == 1 and len(w.events("checkout.order.created")) == 1


async def test_a_double_submit_after_a_new_payment_attempt_answers_the_order_as_it_is() -> None:
    w, user = world(), new_user()
    cart = w.cart.add_cart(user_id=user)
    first = await place(w, user, cart)
    w.payments.set_status(first.order_token, 1, "failed")
    with as_user(user):
        attempt = await w.service.new_attempt(first.order_token, "")

    again = await place(w, user, cart)

    assert again.order_token == first.order_token and again.payment is not None
    assert again.payment.payment_token == attempt.payment_token  # not the first attempt's session
    assert [r.attempt for r in w.payments.requests] == [1, 2]


# -- abandoned placements -----------------------------------------------------------------------------------

async def test_step_3_refuses_a_placement_the_recovery_worker_abandoned_and_the_retry_starts_afresh(monkeypatch) -> None:
    w, user, key = world(), new_user(), str(uuid.uuid4())
    cart = w.cart.add_cart(user_id=user, discount_code="TENOFF")
    real_convert = w.cart.convert

    async def slow_convert(**kwargs):  # type: ignore[no-untyped-def]
        snapshot = await real_convert(**kwargs)
        w.clock.advance(seconds=PLACEMENT_TIMEOUT.total_seconds() + 1)  # the worker gave up on it meanwhile
        w.cart.unavailable = 1  # … and cannot reach cart_svc on its first try
        await w.recovery.one_pass()
        return snapshot

    monkeypatch.setattr(w.cart, "convert", slow_convert)
    await refused(place(w, user, cart, key), 4001)
    monkeypatch.setattr(w.cart, "convert", real_convert)
    [abandoned] = w.repository.placements.values()
    assert abandoned.state == "abandoned" and not w.repository.orders

    await refused(place(w, user, cart, key), 4001)  # the cart is still held for it: refused again, nothing made
    w.clock.advance(minutes=5)
    assert await w.recovery.one_pass() == [abandoned.order_token]  # the release is tried again and succeeds
    view = await place(w, user, cart, key)

    assert view.status == "awaiting_payment" and view.order_token != abandoned.order_token
    assert list(w.repository.orders) == [view.order_token] and w.cart.held("TENOFF") == 1
    states = sorted(p.state for p in w.repository.placements.values())
    assert states == ["placed", "released", "superseded"]


async def test_the_snapshot_must_be_of_this_cart_and_user() -> None:
    w, user = world(), new_user()
    cart = w.cart.add_cart(user_id=user)
    real_convert = w.cart.convert

    async def wrong_owner(**kwargs):  # type: ignore[no-untyped-def]
        return dataclasses.replace(await real_convert(**kwargs), user_id=new_user())

    w.cart.convert = wrong_owner  # type: ignore[method-assign]
    await refused(place(w, user, cart), 5000)
    assert not w.repository.orders
