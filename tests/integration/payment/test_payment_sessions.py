"""PaymentSessions.OpenSession over real gRPC, against real PostgreSQL and the real gateway
emulator driven by the real razorpay and stripe SDKs: idempotency, retries, fallback, breaker."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from decimal import Decimal

import pytest

from common.settings import Settings
from payment_svc.tables import payment_sessions
from tests.support.payments import (
    FAST,
    api_requests,
    audit_rows,
    count_rows,
    events,
    fails_with,
    new_order_token,
    open_request,
    open_session,
    order_expiry,
    payment_row,
)
from tests.support.tokens import new_user


async def test_opens_a_razorpay_session_for_the_order_total(stack, engine):
    user = new_user()
    order = new_order_token()
    session = await open_session(stack, order, user, return_url="https://interns.example/paid")

    assert session.gateway == "razorpay" and session.status == "pending"
    assert session.amount == "1770.00" and session.currency == "INR" and session.order_token == order
    assert session.gateway_order_id.startswith("order_")
    assert session.checkout_url.startswith(f"{stack.emulator.url}/checkout/{session.gateway_order_id}?return_url=")
    assert session.expires_at.endswith("Z")
    gateway_orders = [o for o in stack.emulator.state()["razorpay"]["orders"] if o["receipt"] == f"{order}:1"]
    assert [(o["id"], o["amount"], o["currency"]) for o in gateway_orders] == [(session.gateway_order_id, 177000, "INR")]

    row = await payment_row(engine, session.payment_token)
    assert (row.attempt, row.gateway, row.gateway_order_id, row.status) == (1, "razorpay", session.gateway_order_id, "pending")
    assert row.amount == Decimal("1770.00")
    opened = await events(engine, order, "checkout.payment.session_opened")
    assert len(opened) == 1 and opened[0]["payment_token"] == session.payment_token and opened[0]["gateway"] == "razorpay"
    assert [r.action for r in await audit_rows(engine, session.payment_token)] == ["session_opened"]


async def test_a_retry_returns_the_same_session(stack, engine):
    user = new_user()
    order = new_order_token()
    first = await open_session(stack, order, user)
    again = await open_session(stack, order, user)
    assert again == first
    assert len(api_requests(stack.emulator, "POST", "/v1/orders")) == 1


async def test_concurrent_opens_make_one_row_and_one_gateway_order(stack, engine):
    # the emulator behaves like real Razorpay here: a repeated receipt would make a second order
    stack.emulator.set_faults("razorpay", receipt_idempotent=False, latency_ms=100)
    user = new_user()
    order = new_order_token()
    sessions = await asyncio.gather(*(open_session(stack, order, user) for _ in range(5)))

    assert len({s.payment_token for s in sessions}) == 1 and len({s.gateway_order_id for s in sessions}) == 1
    assert await count_rows(engine, payment_sessions, payment_sessions.c.order_token == order) == 1
    assert [o["receipt"] for o in stack.emulator.state()["razorpay"]["orders"]] == [f"{order}:1"]
    assert len(api_requests(stack.emulator, "POST", "/v1/orders")) == 1
    assert len(await events(engine, order, "checkout.payment.session_opened")) == 1


PATIENT = {**FAST, "payment_gateway_read_timeout": 2.0, "payment_gateway_budget": 6.0,
           "payment_open_session_bound": 12.0}


@pytest.mark.parametrize("payment_settings", [PATIENT], ids=["patient"])
async def test_a_lost_create_response_is_found_by_receipt_not_created_twice(stack, engine):
    """Razorpay creates the order but its answer is lost (a 502 after the fact); the retry finds
    the order by its receipt instead of creating a second one (real Razorpay does not dedupe).
    A fresh attempt sends its first create without a look-up (nothing can exist yet)."""
    stack.emulator.set_faults("razorpay", receipt_idempotent=False, latency_ms=300,
                              error_rate=1.0, error_phase="after", error_statuses=[502])
    user = new_user()
    order = new_order_token()
    task = asyncio.create_task(open_session(stack, order, user))
    # the faults a call meets are those in force when it arrives: the create arrives at once and
    # loses its answer 300 ms later; the fault is lifted as soon as the create is logged, so the
    # retry's look-up by receipt is answered and finds the order.
    await _wait_until(lambda: api_requests(stack.emulator, "POST", "/v1/orders"))
    stack.emulator.set_faults("razorpay", error_rate=0.0)
    session = await task

    assert session.gateway == "razorpay"
    [create] = api_requests(stack.emulator, "POST", "/v1/orders")
    assert create["status"] == 502
    assert api_requests(stack.emulator, "GET", "/v1/orders"), "the retry looked the order up by its receipt"
    created = stack.emulator.state()["razorpay"]["orders"]
    assert [(o["id"], o["receipt"]) for o in created] == [(session.gateway_order_id, f"{order}:1")]


async def test_a_lost_stripe_answer_is_replayed_by_the_idempotency_key(stack, engine):
    stack.emulator.set_faults("razorpay", down=True)
    stack.emulator.set_faults("stripe", latency_ms=300, error_rate=1.0, error_phase="after", error_statuses=[500])
    user = new_user()
    order = new_order_token()
    task = asyncio.create_task(open_session(stack, order, user))
    await _wait_until(lambda: api_requests(stack.emulator, "POST", "/v1/checkout/sessions"))
    stack.emulator.set_faults("stripe", error_rate=0.0)
    session = await task

    assert session.gateway == "stripe"
    sessions = stack.emulator.state()["stripe"]["checkout_sessions"]
    assert [s["id"] for s in sessions] == [session.gateway_order_id]  # the retry was answered with the first
    posts = api_requests(stack.emulator, "POST", "/v1/checkout/sessions")
    assert {p["idempotency_key"] for p in posts} == {f"{order}:1"} and len(posts) >= 2
    assert [p["status"] for p in posts][-1] == 200


async def test_retries_5xx_then_succeeds_at_the_same_gateway(stack, engine):
    user = new_user()
    order = new_order_token()
    stack.emulator.set_faults("razorpay", error_rate=1.0, error_statuses=[500, 503], latency_ms=200)
    task = asyncio.create_task(open_session(stack, order, user))
    await _wait_until(lambda: [r for r in api_requests(stack.emulator) if r["status"] in (500, 503)])
    stack.emulator.set_faults("razorpay", error_rate=0.0, latency_ms=0)
    session = await task

    assert session.gateway == "razorpay"  # retried, not failed over
    statuses = [r["status"] for r in api_requests(stack.emulator, path_prefix="/v1/")]
    assert statuses.count(200) == 2 and len(statuses) - 2 in (1, 2)  # 1-2 injected failures, then lookup + create
    assert not api_requests(stack.emulator, path_prefix="/v1/checkout/sessions")


async def test_retries_a_timeout_then_succeeds(stack, engine):
    user = new_user()
    order = new_order_token()
    stack.emulator.set_faults("razorpay", timeout_s=3.0)  # hangs past our 1 s read timeout
    task = asyncio.create_task(open_session(stack, order, user))
    # a call meets the faults in force when it arrives: once the first try hangs, the hang is
    # lifted, so that try times out and the retry is answered
    await _wait_until(lambda: api_requests(stack.emulator, "POST", "/v1/orders", in_flight=True))
    stack.emulator.set_faults("razorpay", timeout_s=0.0)
    session = await task

    assert session.gateway == "razorpay"
    assert not api_requests(stack.emulator, path_prefix="/v1/checkout/sessions")
    assert not api_requests(stack.emulator, in_flight=True)  # the hung call did not run on: it was cancelled
    creates = api_requests(stack.emulator, "POST", "/v1/orders")
    # given up on after the 1 s read timeout (our side closed the connection and the emulator saw
    # it go: its handler was cancelled, not left to finish its 3 s), then retried
    assert sorted((c["cancelled"], c["ms"] < 3000) for c in creates) == [(False, True), (True, True)], creates
    created = stack.emulator.state()["razorpay"]["orders"]
    assert [o["id"] for o in created if o["receipt"] == f"{order}:1"] == [session.gateway_order_id]


async def test_razorpay_down_opens_the_session_at_stripe(stack, engine):
    stack.emulator.set_faults("razorpay", down=True)
    user = new_user()
    order = new_order_token()
    session = await open_session(stack, order, user, amount="25.50", currency="USD")

    assert session.gateway == "stripe" and session.gateway_order_id.startswith("cs_")
    assert session.checkout_url == f"{stack.emulator.url}/checkout/sessions/{session.gateway_order_id}"
    assert session.key_id == stack.settings.stripe_publishable_key
    [opened_at_stripe] = stack.emulator.state()["stripe"]["checkout_sessions"]
    assert (opened_at_stripe["id"], opened_at_stripe["amount_total"], opened_at_stripe["currency"],
            opened_at_stripe["metadata"]["key"], opened_at_stripe["client_reference_id"]) == (
        session.gateway_order_id, 2550, "usd", f"{order}:1", session.payment_token)
    assert [r["idempotency_key"] for r in api_requests(stack.emulator, "POST", "/v1/checkout/sessions")] == [
        f"{order}:1"]
    row = await payment_row(engine, session.payment_token)
    assert (row.gateway, row.gateway_order_id) == ("stripe", session.gateway_order_id)
    opened = await events(engine, order, "checkout.payment.session_opened")
    assert opened[0]["gateway"] == "stripe"
    [audited] = await audit_rows(engine, session.payment_token)
    assert (audited.action, audited.after["gateway"], audited.after["preferred_gateway"]) == (
        "session_opened", "stripe", "razorpay")


async def test_stripe_preferred_falls_back_to_razorpay(stack, engine):
    stack.emulator.set_faults("stripe", down=True, down_mode="reset")
    user = new_user()
    order = new_order_token()
    session = await open_session(stack, order, user, gateway="stripe")
    assert session.gateway == "razorpay"


async def test_both_gateways_down_is_4001_quickly(stack, engine):
    stack.emulator.set_faults("all", down=True)
    user = new_user()
    order = new_order_token()
    started = time.monotonic()
    detail = await fails_with(open_session(stack, order, user), 4001)
    assert detail.retryable
    assert time.monotonic() - started < FAST["payment_open_session_bound"]
    # the attempt's row stays pending with no gateway order: a retry later can still open it
    stack.emulator.set_faults("all", down=False)
    session = await open_session(stack, order, user)
    assert session.gateway == "razorpay"
    assert await count_rows(engine, payment_sessions, payment_sessions.c.order_token == order) == 1


DEFAULT_BOUND = Settings.model_fields["payment_open_session_bound"].default


@pytest.mark.slow
@pytest.mark.parametrize("payment_settings", [{}], ids=["default-settings"])
async def test_both_gateways_hanging_is_4001_within_the_documented_10_seconds(stack, engine):
    stack.emulator.set_faults("all", timeout_s=30.0)
    user = new_user()
    order = new_order_token()
    started = time.monotonic()
    await fails_with(open_session(stack, order, user), 4001)
    elapsed = time.monotonic() - started
    assert 4.0 < elapsed < DEFAULT_BOUND, elapsed


BREAKER = {**FAST, "payment_breaker_failures": 2, "payment_breaker_cooldown": 1.0}


@pytest.mark.parametrize("payment_settings", [BREAKER], ids=["breaker-after-2"])
async def test_breaker_opens_then_calls_go_straight_to_the_fallback(stack, engine):
    stack.emulator.set_faults("razorpay", down=True)
    user = new_user()
    first = await open_session(stack, new_order_token(), user)
    assert first.gateway == "stripe"
    razorpay_calls = len(api_requests(stack.emulator, path_prefix="/v1/orders"))
    assert razorpay_calls == 2  # two failures opened the breaker; the third try never left

    second = await open_session(stack, new_order_token(), user)
    assert second.gateway == "stripe"
    assert len(api_requests(stack.emulator, path_prefix="/v1/orders")) == razorpay_calls  # not even tried
    assert stack.gateways["razorpay"].breaker.state.value == "open"

    # after the cool-down one trial call goes through; Razorpay is back, so the breaker closes
    stack.emulator.set_faults("razorpay", down=False)
    await asyncio.sleep(1.05)
    third = await open_session(stack, new_order_token(), user)
    assert third.gateway == "razorpay"
    assert stack.gateways["razorpay"].breaker.state.value == "closed"


async def test_refusals(stack, engine):
    """payment_svc reads no order: it refuses what the request itself shows to be wrong."""
    user = new_user()
    order = new_order_token()
    await fails_with(stack.sessions.OpenSession(open_request("not-a-uuid", "", attempt=0, amount="-1",
                                                             currency="XYZ", gateway="paypal")), 1000)
    await fails_with(open_session(stack, order, user, order_expires_at=""), 1000)
    await fails_with(open_session(stack, order, user, order_expires_at="tomorrow"), 1000)
    await fails_with(open_session(stack, order, user, payment_method="cheque"), 1000)
    await fails_with(open_session(stack, order, user, return_url="javascript:alert(1)"), 1000)
    expired = new_order_token()
    await fails_with(open_session(stack, expired, user, order_expires_at=order_expiry(-timedelta(seconds=1))), 2102)
    assert await count_rows(engine, payment_sessions, payment_sessions.c.order_token.in_([order, expired])) == 0
    assert not api_requests(stack.emulator)

    # a retry of an attempt must ask for what it was opened with
    await open_session(stack, order, user)
    await fails_with(open_session(stack, order, user, amount="1.00"), 1000)
    assert await count_rows(engine, payment_sessions, payment_sessions.c.order_token == order) == 1


async def test_gateway_refusing_everywhere_is_not_retryable(stack, engine):
    # both emulated gateways refuse amounts below their minimum (Razorpay 1.00, Stripe 0.50)
    user = new_user()
    order = new_order_token()
    detail = await fails_with(open_session(stack, order, user, amount="0.10"), 3001)
    assert not detail.retryable


async def _wait_until(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(predicate):
        assert time.monotonic() < deadline, "condition never held"
        await asyncio.sleep(0.01)


async def test_a_fresh_attempt_creates_without_a_lookup(stack, engine):
    """The look-up by receipt guards against an earlier create whose answer was lost; a session
    this call has just recorded cannot have one, so it costs a single gateway call."""
    user = new_user()
    order = new_order_token()
    before = len(api_requests(stack.emulator, "GET", "/v1/orders"))
    session = await open_session(stack, order, user)
    assert session.gateway == "razorpay"
    assert len(api_requests(stack.emulator, "GET", "/v1/orders")) == before
