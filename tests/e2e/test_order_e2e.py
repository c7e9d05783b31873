"""Orders and payments through the real edge, with the gateway emulator behind payment_svc:
create order, get order, new attempt, get payment, verify callback — and each error code.

All four services run: order_svc places an order through cart_svc's CartCheckout and payment_svc's
PaymentSessions, and a captured payment reaches the order (paid) and enrollment_svc over NATS."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import io
import re
import uuid

import pypdf
import pytest

from gateway_emulator.runner import start_emulator
from tests.e2e.stack import json_ok, money, order_when

PLAN = "7a1e0000-0000-4000-8000-000000000101"  # 1499.00 INR
KEY_SECRET = "dev-key-secret"


@pytest.fixture(scope="module")
def emulator():
    with start_emulator(port=0) as running:
        running.set_webhook_targets(razorpay=None, stripe=None)  # this module drives the browser callback only
        yield running


@pytest.fixture(scope="module")
def stack_services():
    return ("cart", "order", "payment", "enrollment")


@pytest.fixture(scope="module")
def stack_env(emulator):
    return {"RAZORPAY_BASE_URL": emulator.url, "STRIPE_BASE_URL": emulator.url, "PAYMENT_SWEEP_INTERVAL": "0",
            "PAYMENT_BREAKER_COOLDOWN": "0.5"}  # so the breakers the outage tests open close again quickly


@pytest.fixture
def user(stack):
    headers = stack.bearer(None)
    return headers


def placed_order(stack, headers, **body) -> dict:
    with stack.client() as api:
        cart = json_ok(api.post("/api-proxy/api/cart", json={"items": [{"plan_id": PLAN, "quantity": 1}]}, headers=headers))
        return json_ok(api.post("/api/v1/order", json={"cart_token": cart["token"], **body},
                                headers={**headers, "Idempotency-Key": str(uuid.uuid4())}))


def signature(order_id: str, payment_id: str) -> str:
    return hmac.new(KEY_SECRET.encode(), f"{order_id}|{payment_id}".encode(), hashlib.sha256).hexdigest()


def test_create_and_get_order(stack, user):
    order = placed_order(stack, user, billing={"country": "IN", "state": "KA"}, payment_method="upi")
    assert set(order) >= {"order_token", "cart_token", "user_id", "status", "currency", "subtotal", "discount_amount",
                          "tax_amount", "total", "taxes", "payment", "created_at"}
    assert order["status"] == "awaiting_payment" and order["total"] == "1768.82" and money(order["total"])
    assert [t["name"] for t in order["taxes"]] == ["CGST", "SGST"]
    payment = order["payment"]
    assert set(payment) >= {"payment_token", "gateway", "gateway_order_id", "checkout_url", "status", "amount", "currency", "expires_at"}
    assert (payment["gateway"], payment["status"], payment["amount"], payment["currency"]) == ("razorpay", "pending", "1768.82", "INR")
    assert (payment["key_id"], payment["payment_method"]) == ("rzp_test_devkey", "upi")  # Razorpay Checkout's key, prefill
    with stack.client() as api:
        again = json_ok(api.get(f"/api/v1/order/{order['order_token']}", headers=user))
        assert again["order_token"] == order["order_token"] and again["enrollment_id"] == ""
        assert again["payment"]["key_id"] == "rzp_test_devkey"
        fetched = json_ok(api.get(f"/api/v1/payment/{payment['payment_token']}", headers=user))
        assert (fetched["order_token"], fetched["status"]) == (order["order_token"], "pending")
        assert (fetched["key_id"], fetched["payment_method"]) == ("rzp_test_devkey", "upi")


def test_same_idempotency_key_same_answer_another_body_2005(stack, user, expect_envelope):
    with stack.client() as api:
        cart = json_ok(api.post("/api-proxy/api/cart", json={"items": [{"plan_id": PLAN, "quantity": 1}]}, headers=user))
        headers = {**user, "Idempotency-Key": str(uuid.uuid4())}
        first = api.post("/api/v1/order", json={"cart_token": cart["token"]}, headers=headers)
        second = api.post("/api/v1/order", json={"cart_token": cart["token"]}, headers=headers)
        assert first.status_code == second.status_code == 200 and first.json() == second.json()
        expect_envelope(api.post("/api/v1/order", json={"cart_token": cart["token"], "gateway": "stripe"}, headers=headers), 409, 2005)


def test_order_errors(stack, user, expect_envelope):
    with stack.client() as api:
        expect_envelope(api.post("/api/v1/order", json={"cart_token": str(uuid.uuid4())}), 401, 1101)
        expect_envelope(api.post("/api/v1/order", json={"cart_token": str(uuid.uuid4())}, headers=user), 404, 1001)
        bad = expect_envelope(api.post("/api/v1/order", json={"cart_token": "x", "payment_method": "cash", "gateway": "paypal",
                                                                "return_url": "javascript:alert(1)"}, headers=user), 400, 1000)
        assert len(bad["validation_messages"]) == 4, bad
        empty = json_ok(api.post("/api-proxy/api/cart", json={}, headers=user))
        expect_envelope(api.post("/api/v1/order", json={"cart_token": empty["token"]}, headers=user), 400, 1004)
        expect_envelope(api.get(f"/api/v1/order/{uuid.uuid4()}", headers=user), 404, 2101)
        expect_envelope(api.get(f"/api/v1/payment/{uuid.uuid4()}", headers=user), 404, 3004)


def test_orders_and_payments_are_their_owners_only(stack, user, expect_envelope):
    order = placed_order(stack, user)
    stranger = stack.bearer(None)
    with stack.client() as api:
        for path in (f"/api/v1/order/{order['order_token']}", f"/api/v1/payment/{order['payment']['payment_token']}"):
            expect_envelope(api.get(path), 401, 1101)
            expect_envelope(api.get(path, headers=stranger), 403, 1102)
        expect_envelope(api.post(f"/api/v1/order/{order['order_token']}/payment", json={}, headers=stranger), 403, 1102)


def test_verify_callback_then_new_attempt_rules(stack, user, emulator, expect_envelope):
    order = placed_order(stack, user)
    gateway_order = order["payment"]["gateway_order_id"]
    with stack.client() as api:
        expect_envelope(api.post(f"/api/v1/order/{order['order_token']}/payment", json={}, headers=user), 409, 2102)
        failed = emulator.fail(gateway_order)
        failed_id = failed["payment"]["id"]
        tampered = {"razorpay_order_id": gateway_order, "razorpay_payment_id": failed_id, "razorpay_signature": "0" * 64}
        expect_envelope(api.post("/api/v1/payment/verify", json=tampered, headers=user), 400, 3101)
        verdict = json_ok(api.post("/api/v1/payment/verify", headers=user, json={
            "razorpay_order_id": gateway_order, "razorpay_payment_id": failed_id,
            "razorpay_signature": signature(gateway_order, failed_id)}))
        assert verdict["status"] == "failed"
        moved = order_when(api, user, order["order_token"], lambda o: o["status"] != "awaiting_payment")
        assert moved["status"] == "payment_failed"

        retry = json_ok(api.post(f"/api/v1/order/{order['order_token']}/payment", json={}, headers=user))
        assert retry["payment_token"] != order["payment"]["payment_token"] and retry["amount"] == order["total"]
        paid = emulator.pay(retry["gateway_order_id"])
        paid_id = paid["payment"]["id"]
        captured = json_ok(api.post("/api/v1/payment/verify", headers=user, json={
            "razorpay_order_id": retry["gateway_order_id"], "razorpay_payment_id": paid_id,
            "razorpay_signature": signature(retry["gateway_order_id"], paid_id)}))
        assert captured["status"] == "captured"
        moved = order_when(api, user, order["order_token"], lambda o: o["status"] != "awaiting_payment")
        assert moved["status"] in ("paid", "fulfilled")
        expect_envelope(api.post(f"/api/v1/order/{order['order_token']}/payment", json={}, headers=user), 409, 2102)


def test_razorpay_down_opens_the_session_at_stripe(stack, user, emulator):
    emulator.set_faults("razorpay", down=True)
    try:
        order = placed_order(stack, user)
    finally:
        emulator.set_faults("razorpay", down=False)
    assert order["payment"]["gateway"] == "stripe" and order["status"] == "awaiting_payment"
    payment = order["payment"]
    assert payment["gateway_order_id"].startswith("cs_") and payment["key_id"] == "pk_test_devkey"
    assert payment["checkout_url"] == f"{emulator.url}/checkout/sessions/{payment['gateway_order_id']}"


async def test_both_gateways_down_is_4001_retryable(stack, user, emulator, expect_envelope):
    emulator.set_faults("all", down=True)
    try:
        with stack.client() as api:
            cart = json_ok(api.post("/api-proxy/api/cart", json={"items": [{"plan_id": PLAN, "quantity": 1}]}, headers=user))
            error = expect_envelope(api.post("/api/v1/order", json={"cart_token": cart["token"]},
                                             headers={**user, "Idempotency-Key": "k-" + cart["token"]}), 503, 4001)
            assert error["retryable"] is True
    finally:
        emulator.set_faults("all", down=False)
    made_before_the_outage = await orders_of_cart(stack, cart["token"])
    assert len(made_before_the_outage) == 1  # the key's recovery point: the order exists, no session yet
    await asyncio.sleep(0.6)  # the outage opened both circuit breakers; after the cool-down one trial call goes through
    with stack.client() as api:  # the retry with the same key resumes: the same order, now with a session
        resumed = json_ok(api.post("/api/v1/order", json={"cart_token": cart["token"]},
                                   headers={**user, "Idempotency-Key": "k-" + cart["token"]}))
    assert resumed["status"] == "awaiting_payment" and resumed["payment"]["gateway_order_id"]
    assert [resumed["order_token"]] == made_before_the_outage == await orders_of_cart(stack, cart["token"])
    assert gateway_orders_of(emulator, resumed["order_token"]) == [resumed["payment"]["gateway_order_id"]]


async def orders_of_cart(stack, cart_token: str) -> list[str]:
    rows = await stack.rows("SELECT order_token FROM ordering.orders WHERE cart_token = :cart", cart=cart_token)
    return [str(row.order_token) for row in rows]


def gateway_orders_of(emulator, order_token: str) -> list[str]:
    """Every order or Checkout Session either gateway holds for the order's payment attempts."""
    state = emulator.state()
    razorpay = [order["id"] for order in state["razorpay"]["orders"] if (order.get("receipt") or "").startswith(order_token)]
    stripe = [session["id"] for session in state["stripe"]["checkout_sessions"]
              if session["metadata"].get("key", "").startswith(order_token)]
    return razorpay + stripe


def test_the_gst_invoice_of_a_paid_order_is_a_pdf_for_its_owner(stack, user, emulator, expect_envelope):
    billing = {"country": "IN", "state": "KA", "name": "Asha Rao", "gstin": "29AAGCR4375J1ZU"}
    with stack.client() as api:
        bad = expect_envelope(api.post("/api/v1/order", headers=user, json={
            "cart_token": str(uuid.uuid4()), "billing": {**billing, "gstin": "29AAGCR4375J1ZV"}}), 400, 1000)
        assert [m for m in bad["validation_messages"] if m.startswith("billing.gstin")], bad
    order = placed_order(stack, user, billing=billing)
    assert re.fullmatch(r"INT-20\d\d-\d{6}", order["order_number"])
    invoice_path = f"/api/v1/order/{order['order_token']}/invoice"
    with stack.client() as api:
        expect_envelope(api.get(invoice_path, headers=user), 409, 2102)
        paid = emulator.pay(order["payment"]["gateway_order_id"])
        json_ok(api.post("/api/v1/payment/verify", headers=user, json={
            "razorpay_order_id": order["payment"]["gateway_order_id"], "razorpay_payment_id": paid["payment"]["id"],
            "razorpay_signature": signature(order["payment"]["gateway_order_id"], paid["payment"]["id"])}))
        order_when(api, user, order["order_token"], lambda o: o["status"] in ("paid", "fulfilled"))

        response = api.get(invoice_path, headers=user)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/pdf"
        assert re.fullmatch(r'inline; filename="INV\d\d-\d\d-\d{6}\.pdf"', response.headers["content-disposition"])
        text = " ".join(" ".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(response.content)).pages).split())
        for expected in ("TAX INVOICE", "Asha Rao", "GSTIN: 29AAGCR4375J1ZU", "Place of supply: KA", "CGST @ 9%",
                         "SGST @ 9%", "1,768.82", "Indian Rupees One Thousand Seven Hundred Sixty Eight And Paise "
                         "Eighty Two Only"):
            assert expected in text, (expected, text)
        expect_envelope(api.get(invoice_path), 401, 1101)
        expect_envelope(api.get(invoice_path, headers=stack.bearer(None)), 403, 1102)
        expect_envelope(api.get(f"/api/v1/order/{order['order_token']}/credit-notes/rfnd_none", headers=user), 404, 2103)
