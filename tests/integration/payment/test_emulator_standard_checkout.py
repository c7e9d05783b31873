"""The emulator's Razorpay Standard Checkout over HTTP: `GET /v1/checkout.js` defines the
`Razorpay` constructor, the modal it opens checks the key and the order, and the modal's Pay /
Fail settle payments as the hosted page does (signature, payment entity, webhooks), a failed
payment leaving the order open to another. The browser side (the script in Chromium, with the
checkout page) is tests/browser/test_checkout_page.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import razorpay  # type: ignore[import-untyped]
import stripe

from gateway_emulator import RunningEmulator, start_emulator

pytestmark = pytest.mark.timeout(60)

KEY_ID, KEY_SECRET = "rzp_test_devkey", "dev-key-secret"
PAGE = "http://127.0.0.1:8080"


@pytest.fixture
def emulator() -> Iterator[RunningEmulator]:
    # no webhook target: the events are still recorded (state "failed" after the attempts)
    running = start_emulator(port=0, webhook_razorpay_url=None, webhook_stripe_url=None, webhook_retry_delays=())
    yield running
    running.stop()


@pytest.fixture
def rzp(emulator: RunningEmulator) -> razorpay.Client:
    return razorpay.Client(auth=(KEY_ID, KEY_SECRET), base_url=emulator.url)


def new_order(rzp: razorpay.Client) -> dict[str, Any]:
    order: dict[str, Any] = rzp.order.create({"amount": 117882, "currency": "INR", "receipt": "r-standard"})
    return order


def modal(emulator: RunningEmulator, **params: str) -> httpx.Response:
    return httpx.get(f"{emulator.url}/razorpay/checkout/modal", params={"parent_origin": PAGE, **params})


def press(emulator: RunningEmulator, order_id: str, action: str, **body: Any) -> httpx.Response:
    return httpx.post(f"{emulator.url}/razorpay/checkout/{order_id}/{action}", json={"key_id": KEY_ID, **body})


def event_names(emulator: RunningEmulator, order_id: str) -> list[str]:
    return [event["event"] for event in emulator.webhooks(gateway="razorpay", order_id=order_id)["events"]]


def test_checkout_js_defines_the_razorpay_constructor(emulator: RunningEmulator) -> None:
    script = httpx.get(f"{emulator.url}/v1/checkout.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("application/javascript")
    for needle in ("window.Razorpay = Razorpay", "Razorpay.prototype.open", "Razorpay.prototype.on",
                   "payment.failed", "ondismiss", "event.origin !== ORIGIN"):
        assert needle in script.text, needle


def test_modal_shows_the_order_with_the_method_prefilled(emulator: RunningEmulator, rzp: razorpay.Client) -> None:
    order = new_order(rzp)
    page = modal(emulator, key_id=KEY_ID, order_id=order["id"], method="upi", name="Internships")
    assert page.status_code == 200, page.text
    for needle in ("₹1,178.82", "id='pay-button'", "id='fail-button'", "id='modal-close'",
                   "<option value='upi' selected>", f"data-parent-origin='{PAGE}'", "Internships"):
        assert needle in page.text, needle


@pytest.mark.parametrize(
    ("params", "status", "words"),
    [
        ({"key_id": "rzp_test_other"}, 401, "Authentication failed"),
        ({"key_id": KEY_ID, "order_id": "order_NoSuchOrder"}, 400, "does not exist"),
        ({"key_id": KEY_ID, "parent_origin": "https://shop.example/path"}, 400, "parent_origin"),
        ({"key_id": KEY_ID, "parent_origin": "javascript:alert(1)"}, 400, "parent_origin"),
    ],
)
def test_modal_refuses_another_key_an_unknown_order_or_no_origin(
    emulator: RunningEmulator, rzp: razorpay.Client, params: dict[str, str], status: int, words: str
) -> None:
    order = new_order(rzp)
    page = modal(emulator, **({"order_id": order["id"]} | params))
    assert page.status_code == status and words in page.text, page.text
    assert "id='pay-button'" not in page.text


def test_fail_then_pay_in_the_same_modal(emulator: RunningEmulator, rzp: razorpay.Client) -> None:
    order = new_order(rzp)
    failed = press(emulator, order["id"], "fail", method="netbanking")
    assert failed.status_code == 200, failed.text
    assert failed.json()["event"] == "payment.failed"
    error = failed.json()["payload"]["error"]
    assert error["code"] == "BAD_REQUEST_ERROR" and error["reason"] == "payment_failed"
    assert error["source"] == "customer" and error["step"] == "payment_authorization" and error["description"]
    assert error["metadata"]["order_id"] == order["id"]
    failed_payment = rzp.payment.fetch(error["metadata"]["payment_id"])
    assert (failed_payment["status"], failed_payment["method"]) == ("failed", "netbanking")
    assert rzp.order.fetch(order["id"])["status"] == "attempted"

    paid = press(emulator, order["id"], "pay", method="upi")
    assert paid.status_code == 200 and paid.json()["event"] == "payment.success"
    response = paid.json()["payload"]
    assert set(response) == {"razorpay_payment_id", "razorpay_order_id", "razorpay_signature"}
    assert response["razorpay_order_id"] == order["id"]
    assert rzp.utility.verify_payment_signature(response)
    payment = rzp.payment.fetch(response["razorpay_payment_id"])
    assert (payment["status"], payment["method"], payment["amount"]) == ("captured", "upi", 117882)
    fetched = rzp.order.fetch(order["id"])
    assert (fetched["status"], fetched["attempts"], fetched["amount_paid"]) == ("paid", 2, 117882)
    emulator.wait_for_webhooks(lambda log: len(log["events"]) == 3, order_id=order["id"])
    assert sorted(event_names(emulator, order["id"])) == ["order.paid", "payment.captured", "payment.failed"]

    again = press(emulator, order["id"], "pay")  # paid: the modal cannot pay it twice
    assert again.status_code == 409 and "already been paid" in again.json()["error"]["description"]
    page = modal(emulator, key_id=KEY_ID, order_id=order["id"])
    assert "This order is already paid." in page.text and "disabled" in page.text


def test_pay_and_fail_refuse_a_wrong_key_a_bad_method_and_a_stripe_intent(
    emulator: RunningEmulator, rzp: razorpay.Client
) -> None:
    order = new_order(rzp)
    assert press(emulator, order["id"], "pay", key_id="rzp_test_other").status_code == 401
    assert press(emulator, order["id"], "pay", method="cash").status_code == 400
    bad_body = httpx.post(f"{emulator.url}/razorpay/checkout/{order['id']}/pay", content=b"[1]")
    assert bad_body.status_code == 400
    intent = stripe.StripeClient("sk_test_dev", base_addresses={"api": emulator.url}).v1.payment_intents.create(
        params={"amount": 2500, "currency": "usd"})
    assert press(emulator, intent.id, "pay").status_code == 400
    assert rzp.order.fetch(order["id"])["attempts"] == 0  # nothing was settled
    assert httpx.get(f"{emulator.url}/razorpay/checkout/{order['id']}/pay").status_code == 405


def test_razorpay_down_takes_the_script_and_the_modal_down(emulator: RunningEmulator, rzp: razorpay.Client) -> None:
    order = new_order(rzp)
    emulator.set_faults("razorpay", down=True)
    assert httpx.get(f"{emulator.url}/v1/checkout.js").status_code == 503
    assert modal(emulator, key_id=KEY_ID, order_id=order["id"]).status_code == 503
    assert press(emulator, order["id"], "pay").status_code == 503
