"""A free order (a 100% coupon: total 0.00) through the real edge, with all four services and the
gateway emulator: `POST /api/v1/order` answers it paid with `payment` `{"gateway": "none",
"status": "captured", "amount": "0.00", …}`, no gateway hears of it, and its enrollment follows
as for any capture (CONTRACT.md "Additions", Orders). Also the return URLs: a `return_url` or
`cancel_url` off the allowed origins is 400 (1000) naming the field, and nothing is placed."""

from __future__ import annotations

import uuid

import pytest

from gateway_emulator import RunningEmulator
from tests.e2e.stack import json_ok, order_when

pytestmark = pytest.mark.timeout(180)

PLAN = "7a1e0000-0000-4000-8000-000000000101"  # 1499.00 INR in the sample catalog


@pytest.fixture(scope="module")
def stack_services():
    return ("cart", "order", "payment", "enrollment")


@pytest.fixture(scope="module")
def stack_env(emulator):
    return {"RAZORPAY_BASE_URL": emulator.url, "STRIPE_BASE_URL": emulator.url, "PAYMENT_SWEEP_INTERVAL": "0",
            "PAYMENT_RECONCILE_INTERVAL": "0"}


def gateway_calls(emulator: RunningEmulator) -> list[dict]:
    return emulator.control("GET", "requests")["requests"]


def test_a_100_percent_coupon_makes_a_paid_order_with_no_gateway_and_an_enrollment(stack, emulator):
    coupon = stack.new_coupon(kind="percent", value="100")
    user = str(uuid.uuid4())
    headers = stack.bearer(user)
    calls_before = len(gateway_calls(emulator))
    with stack.client() as api:
        cart = json_ok(api.post("/api-proxy/api/cart", json={"items": [{"plan_id": PLAN, "quantity": 1}]},
                                headers=headers))
        cart = json_ok(api.post(f"/api/v1/cart/{cart['token']}/coupon", json={"code": coupon["code"]}, headers=headers))
        assert (cart["discount_amount"], cart["tax_amount"], cart["total"]) == ("1499.00", "0.00", "0.00"), cart
        key = str(uuid.uuid4())
        order = json_ok(api.post("/api/v1/order", json={"cart_token": cart["token"]},
                                 headers={**headers, "Idempotency-Key": key}))

        assert order["status"] in ("paid", "fulfilled") and order["total"] == "0.00", order
        payment = order["payment"]
        assert (payment["gateway"], payment["status"], payment["amount"], payment["currency"]) == (
            "none", "captured", "0.00", "INR"), payment
        assert (payment["gateway_order_id"], payment["checkout_url"]) == ("", "")
        again = json_ok(api.post("/api/v1/order", json={"cart_token": cart["token"]},
                                 headers={**headers, "Idempotency-Key": key}))
        assert again == order  # the key replays the first answer

        fulfilled = order_when(api, headers, order["order_token"], lambda o: o["status"] == "fulfilled")
        assert fulfilled["enrollment_id"] and fulfilled["payment"]["gateway"] == "none"
        enrollments = json_ok(api.get("/api/v1/enrollments", headers=headers))["enrollments"]
        mine = [e for e in enrollments if e["order_token"] == order["order_token"]]
        assert [e["enrollment_id"] for e in mine] == [fulfilled["enrollment_id"]], mine
        read = json_ok(api.get(f"/api/v1/payment/{payment['payment_token']}", headers=headers))
        assert (read["status"], read["gateway"], read["amount"]) == ("captured", "none", "0.00"), read
    assert len(gateway_calls(emulator)) == calls_before  # the emulator saw no call for it


@pytest.mark.parametrize("field, url, problem", [
    ("return_url", "http://evil.example/paid", "must be on an allowed origin (RETURN_URL_ORIGINS)"),
    ("return_url", "//evil.example/paid", "an absolute http(s) URL"),
    ("cancel_url", "javascript:alert(1)", "an absolute http(s) URL"),
    ("cancel_url", "http://user@localhost:8080/", "no user info (user@host)"),
])
def test_a_return_url_off_the_allowed_origins_is_400_naming_the_field(stack, expect_envelope, field, url, problem):
    headers = stack.bearer(None)
    with stack.client() as api:
        cart = json_ok(api.post("/api-proxy/api/cart", json={"items": [{"plan_id": PLAN, "quantity": 1}]},
                                headers=headers))
        refused = expect_envelope(api.post("/api/v1/order", json={"cart_token": cart["token"], field: url},
                                           headers=headers), 400, 1000)
        assert refused["validation_messages"] == [f"{field}: {problem}"]
        assert json_ok(api.get(f"/api/v1/cart/{cart['token']}", headers=headers))["status"] == "active"  # not placed
        order = json_ok(api.post("/api/v1/order", json={"cart_token": cart["token"],
                                                        field: f"{stack.url}/#/orders"}, headers=headers))
        assert order["status"] == "awaiting_payment"  # the edge's own origin is allowed
