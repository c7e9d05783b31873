"""The gateway adapters (payment_svc/gateways/) against the real gateway emulator over HTTP: our
httpx Razorpay client and Stripe's native async client, what each sends and how each answer and
failure is classified; and a timed-out call being really cancelled (the emulator sees the
connection go, our side does not wait for the answer)."""

from __future__ import annotations

import asyncio
import datetime
import time
import uuid

import httpx
import pytest

from common.clock import utc_now
from gateway_emulator import RunningEmulator
from payment_svc.domain.circuit_breaker import CircuitBreaker
from payment_svc.gateways.base import CheckoutRequest, GatewayRejected, GatewayUnavailable
from payment_svc.gateways.razorpay_gateway import RazorpayGateway
from payment_svc.gateways.resilient import ResilientGateway
from payment_svc.gateways.stripe_gateway import StripeGateway
from payment_svc.tuning import GatewayTuning
from tests.support.payments import api_requests

TUNING = GatewayTuning(connect_timeout_s=0.5, read_timeout_s=1.0, attempts=2, first_backoff_s=0.01,
                       max_backoff_s=0.02, budget_s=2.0, connections=4)
PAGE = "http://127.0.0.1:8080/"


def request(*, amount: int = 177000, currency: str = "INR", method: str = "", return_url: str = "",
            cancel_url: str = "") -> CheckoutRequest:
    order, now = str(uuid.uuid4()), utc_now()
    return CheckoutRequest(key=f"{order}:1", payment_token=str(uuid.uuid4()), order_token=order, amount_minor=amount,
                           currency=currency, description="Backend internship – 3 months",
                           expires_at=now + datetime.timedelta(minutes=30), created_at=now, return_url=return_url,
                           cancel_url=cancel_url, payment_method=method)


@pytest.fixture
async def razorpay(emulator: RunningEmulator):
    gateway = RazorpayGateway(key_id="rzp_test_devkey", key_secret="dev-key-secret", base_url=emulator.url,
                              checkout_template="{base_url}/checkout/{gateway_order_id}", tuning=TUNING)
    yield gateway
    await gateway.close()


@pytest.fixture
async def stripe_gateway(emulator: RunningEmulator):
    gateway = StripeGateway(api_key="sk_test_dev", base_url=emulator.url, page_url=PAGE, tuning=TUNING)
    yield gateway
    await gateway.close()


# ---- Razorpay -------------------------------------------------------------------------------
async def test_razorpay_order_carries_our_key_token_and_method(razorpay, emulator):
    asked = request(method="upi", return_url="http://127.0.0.1:8080/done")
    order = await razorpay.create_order(asked, may_exist=False)

    assert (order.gateway, order.amount_minor, order.currency) == ("razorpay", 177000, "INR")
    assert order.checkout_url == (f"{emulator.url}/checkout/{order.gateway_order_id}?"
                                  "return_url=http%3A%2F%2F127.0.0.1%3A8080%2Fdone")
    [stored] = (await asyncio.to_thread(emulator.state))["razorpay"]["orders"]
    assert (stored["id"], stored["receipt"]) == (order.gateway_order_id, asked.key)
    assert stored["notes"] == {"key": asked.key, "payment_token": asked.payment_token,
                               "order_token": asked.order_token, "description": asked.description, "method": "upi"}
    assert not api_requests(emulator, "GET", "/v1/orders")  # a fresh attempt skips the look-up


async def test_razorpay_a_retry_finds_the_order_by_its_receipt(razorpay, emulator):
    asked = request()
    first = await razorpay.create_order(asked, may_exist=False)
    again = await razorpay.create_order(asked)
    assert again.gateway_order_id == first.gateway_order_id
    assert len(api_requests(emulator, "POST", "/v1/orders")) == 1
    assert (await razorpay.find_order_by_key(asked.key)).gateway_order_id == first.gateway_order_id
    assert await razorpay.find_order_by_key(f"{uuid.uuid4()}:1") is None


async def test_razorpay_payments_as_the_gateway_reports_them(razorpay, emulator):
    order = await razorpay.create_order(request(), may_exist=False)
    failed = (await asyncio.to_thread(emulator.fail, order.gateway_order_id))["payment"]
    await asyncio.sleep(1.05)  # Razorpay's created_at is in whole seconds: the capture is a newer one
    captured = (await asyncio.to_thread(emulator.pay, order.gateway_order_id))["payment"]

    payments = await razorpay.fetch_order_payments(order.gateway_order_id)
    assert [(p.id, p.status, p.amount_minor, p.currency, p.order_id) for p in payments] == [
        (captured["id"], "captured", 177000, "INR", order.gateway_order_id),
        (failed["id"], "failed", 177000, "INR", order.gateway_order_id)]
    fetched = await razorpay.fetch_payment(captured["id"])
    assert (fetched.id, fetched.status, fetched.order_id) == (captured["id"], "captured", order.gateway_order_id)


async def test_razorpay_refusals_and_outages_are_classified(razorpay, emulator):
    with pytest.raises(GatewayRejected, match="does not exist"):
        await razorpay.fetch_payment("pay_Unknown0000001")
    with pytest.raises(GatewayRejected):
        await razorpay.create_order(request(amount=50), may_exist=False)  # below Razorpay's minimum
    emulator.set_faults("razorpay", error_rate=1.0, error_statuses=[503])
    with pytest.raises(GatewayUnavailable, match="HTTP 503"):
        await razorpay.fetch_payment("pay_Unknown0000001")
    emulator.set_faults("razorpay", error_rate=0.0, down=True, down_mode="reset")
    with pytest.raises(GatewayUnavailable):
        await razorpay.fetch_payment("pay_Unknown0000001")


async def test_razorpay_ids_stay_in_their_path_segment(razorpay, emulator):
    with pytest.raises(GatewayRejected):
        await razorpay.fetch_payment("../orders?receipt=x")
    [call] = api_requests(emulator, "GET")
    assert call["path"] == "/v1/payments/../orders?receipt=x"  # one segment, percent-encoded on the wire


# ---- Stripe -------------------------------------------------------------------------------
async def test_stripe_opens_a_checkout_session_with_our_parameters(stripe_gateway, emulator):
    asked = request(amount=4999, currency="USD", method="card", return_url="http://127.0.0.1:8080/?o=1",
                    cancel_url="http://127.0.0.1:8080/cancelled")
    order = await stripe_gateway.create_order(asked)

    assert order.gateway_order_id.startswith("cs_") and (order.amount_minor, order.currency) == (4999, "USD")
    assert order.checkout_url == f"{emulator.url}/checkout/sessions/{order.gateway_order_id}"
    [session] = (await asyncio.to_thread(emulator.state))["stripe"]["checkout_sessions"]
    assert session["client_reference_id"] == asked.payment_token and session["mode"] == "payment"
    assert session["success_url"] == "http://127.0.0.1:8080/?o=1&session_id={CHECKOUT_SESSION_ID}"
    assert session["cancel_url"] == "http://127.0.0.1:8080/cancelled"
    assert session["payment_method_types"] == ["card"]
    assert session["metadata"] == {"key": asked.key, "payment_token": asked.payment_token,
                                   "order_token": asked.order_token, "payment_method": "card"}
    # Stripe's floor: 30 minutes after creation; ours is 30 minutes too, so it is raised to 31
    assert session["expires_at"] == int((asked.created_at + datetime.timedelta(minutes=31)).timestamp())
    [post] = api_requests(emulator, "POST", "/v1/checkout/sessions")
    assert post["idempotency_key"] == asked.key


async def test_stripe_without_urls_or_a_stripe_method_falls_back_to_our_page(stripe_gateway, emulator):
    await stripe_gateway.create_order(request(amount=5000, currency="USD", method="upi"))
    [session] = (await asyncio.to_thread(emulator.state))["stripe"]["checkout_sessions"]
    assert session["success_url"] == PAGE + "?session_id={CHECKOUT_SESSION_ID}"
    assert session["cancel_url"] == PAGE
    assert session["payment_method_types"] == ["card"]  # the emulator's default: nothing was asked for


async def test_stripe_a_retry_is_replayed_by_the_idempotency_key(stripe_gateway, emulator):
    asked = request(amount=5000, currency="USD")
    first = await stripe_gateway.create_order(asked)
    again = await stripe_gateway.create_order(asked)
    assert again == first
    assert len((await asyncio.to_thread(emulator.state))["stripe"]["checkout_sessions"]) == 1
    assert await stripe_gateway.find_order_by_key(asked.key) is None  # Stripe has no look-up by key


async def test_stripe_session_payments_before_and_after_paying(stripe_gateway, emulator):
    order = await stripe_gateway.create_order(request(amount=5000, currency="USD"))
    assert await stripe_gateway.fetch_order_payments(order.gateway_order_id) == []

    failed = (await asyncio.to_thread(emulator.fail, order.gateway_order_id))["payment"]
    [attempt] = await stripe_gateway.fetch_order_payments(order.gateway_order_id)
    assert (attempt.id, attempt.order_id, attempt.status) == (failed["id"], order.gateway_order_id, "failed")

    await asyncio.to_thread(emulator.pay, order.gateway_order_id)
    [paid] = await stripe_gateway.fetch_order_payments(order.gateway_order_id)
    assert (paid.id, paid.status, paid.amount_minor, paid.currency) == (failed["id"], "captured", 5000, "USD")
    fetched = await stripe_gateway.fetch_payment(failed["id"])
    assert (fetched.status, fetched.amount_minor) == ("captured", 5000)


async def test_stripe_an_expired_session_is_a_failed_payment(stripe_gateway, emulator):
    order = await stripe_gateway.create_order(request(amount=5000, currency="USD"))
    async with httpx.AsyncClient(base_url=emulator.url, headers={"Authorization": "Bearer sk_test_dev"}) as api:
        assert (await api.post(f"/v1/checkout/sessions/{order.gateway_order_id}/expire")).status_code == 200
    [expired] = await stripe_gateway.fetch_order_payments(order.gateway_order_id)
    assert (expired.status, expired.order_id) == ("failed", order.gateway_order_id)


async def test_stripe_refusals_and_outages_are_classified(stripe_gateway, emulator):
    with pytest.raises(GatewayRejected):
        await stripe_gateway.fetch_order_payments("cs_test_unknown")
    with pytest.raises(GatewayRejected):  # below Stripe's minimum
        await stripe_gateway.create_order(request(amount=10, currency="USD"))
    emulator.set_faults("stripe", error_rate=1.0, error_statuses=[500])
    with pytest.raises(GatewayUnavailable):
        await stripe_gateway.fetch_order_payments("cs_test_unknown")
    emulator.set_faults("stripe", error_rate=0.0, down=True, down_mode="reset")
    with pytest.raises(GatewayUnavailable):
        await stripe_gateway.fetch_order_payments("cs_test_unknown")


# ---- a timed-out call is really cancelled ---------------------------------------------------
@pytest.mark.parametrize("gateway", ["razorpay", "stripe"])
async def test_a_call_past_the_budget_is_cancelled_not_waited_for(emulator, gateway):
    slow = GatewayTuning(connect_timeout_s=0.5, read_timeout_s=5.0, attempts=1, budget_s=0.4, connections=2)
    inner = (RazorpayGateway(key_id="rzp_test_devkey", key_secret="dev-key-secret", base_url=emulator.url,
                             checkout_template="{base_url}/checkout/{gateway_order_id}", tuning=slow)
             if gateway == "razorpay" else
             StripeGateway(api_key="sk_test_dev", base_url=emulator.url, page_url=PAGE, tuning=slow))
    resilient = ResilientGateway(inner, CircuitBreaker(failure_threshold=5, cooldown_s=30), slow)
    emulator.set_faults(gateway, latency_ms=3000)  # the gateway answers after 3 s; the budget is 0.4 s
    try:
        started = time.monotonic()
        with pytest.raises(GatewayUnavailable, match="budget"):
            await resilient.create_order(request(amount=5000, currency="USD"), may_exist=False)
        waited = time.monotonic() - started
        assert 0.35 <= waited < 0.9, waited  # the budget, not the gateway's 3 s

        async def cancelled_at_the_emulator() -> list[dict]:
            calls = api_requests(emulator, "POST")
            return calls if calls and not api_requests(emulator, in_flight=True) else []
        deadline = time.monotonic() + 2.0
        while not (calls := await cancelled_at_the_emulator()):
            assert time.monotonic() < deadline, "the emulator still answers the abandoned call"
            await asyncio.sleep(0.02)
        [call] = calls
        assert call["cancelled"] is True and call["status"] is None and call["ms"] < 1500, call
    finally:
        emulator.set_faults(gateway, latency_ms=0)
        await inner.close()

