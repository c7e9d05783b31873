"""The gateway emulator, driven by the real `razorpay` and `stripe` SDKs: orders, payment
intents, idempotency, the hosted page's redirects, signed webhooks with retries, and the fault
knobs as the SDKs see them. No database or broker needed; every server here is on port 0."""

from __future__ import annotations

import base64
import html
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import razorpay  # type: ignore[import-untyped]
import requests
import stripe

from gateway_emulator import RunningEmulator, checkout_url, start_emulator

pytestmark = pytest.mark.timeout(60)

PROJECT = Path(__file__).resolve().parents[3]
KEY_ID, KEY_SECRET = "rzp_test_devkey", "dev-key-secret"
RZP_WEBHOOK_SECRET = "dev-webhook-secret"
STRIPE_KEY, STRIPE_WEBHOOK_SECRET = "sk_test_dev", "dev-stripe-webhook-secret"
FAST_RETRIES = (0.05, 0.1, 0.2)


# ---- a tiny webhook receiver ------------------------------------------------------------
@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str
    requests: queue.Queue[Received] = field(default_factory=queue.Queue)
    statuses: list[int] = field(default_factory=list)  # answered in turn, then 200
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_status(self) -> int:
        with self.lock:
            return self.statuses.pop(0) if self.statuses else 200

    def take(self, count: int, timeout: float = 5.0) -> list[Received]:
        return [self.requests.get(timeout=timeout) for _ in range(count)]

    def quiet_for(self, seconds: float) -> bool:
        try:
            self.requests.get(timeout=seconds)
        except queue.Empty:
            return True
        return False


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state: dict[str, Receiver] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            me = state["receiver"]
            me.requests.put(
                Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            )
            status = me.next_status()
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state["receiver"] = Receiver(f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state["receiver"]
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def emulator(receiver: Receiver) -> Iterator[RunningEmulator]:
    running = start_emulator(
        port=0,
        webhook_razorpay_url=f"{receiver.url}/razorpay",
        webhook_stripe_url=f"{receiver.url}/stripe",
        webhook_retry_delays=FAST_RETRIES,
        webhook_timeout_s=2.0,
    )
    yield running
    running.stop()


@pytest.fixture
def rzp(emulator: RunningEmulator) -> razorpay.Client:
    return razorpay.Client(auth=(KEY_ID, KEY_SECRET), base_url=emulator.url)


@pytest.fixture
def stripe_client(emulator: RunningEmulator) -> stripe.StripeClient:
    return stripe.StripeClient(STRIPE_KEY, base_addresses={"api": emulator.url})


def new_order(rzp: razorpay.Client, **extra: Any) -> dict[str, Any]:
    body = {"amount": 149900, "currency": "INR", "receipt": f"rcpt-{time.monotonic_ns()}"}
    order: dict[str, Any] = rzp.order.create(body | extra)
    return order


def verify_razorpay_webhook(message: Received) -> dict[str, Any]:
    utility = razorpay.Client(auth=(KEY_ID, KEY_SECRET)).utility
    signature = message.headers["x-razorpay-signature"]
    assert utility.verify_webhook_signature(message.body.decode(), signature, RZP_WEBHOOK_SECRET)
    payload: dict[str, Any] = json.loads(message.body)
    return payload


# ---- Razorpay API -------------------------------------------------------------------------
def test_razorpay_order_create_fetch_and_same_receipt_same_order(rzp: razorpay.Client) -> None:
    order = new_order(rzp, notes={"order_token": "abc"})
    assert order["id"].startswith("order_") and order["entity"] == "order"
    assert (order["amount"], order["amount_paid"], order["amount_due"]) == (149900, 0, 149900)
    assert (order["currency"], order["status"], order["attempts"]) == ("INR", "created", 0)
    assert order["notes"] == {"order_token": "abc"} and isinstance(order["created_at"], int)

    assert rzp.order.fetch(order["id"]) == order
    again = rzp.order.create({"amount": 149900, "currency": "INR", "receipt": order["receipt"]})
    assert again["id"] == order["id"]
    listed = rzp.order.all({"receipt": order["receipt"]})
    assert [o["id"] for o in listed["items"]] == [order["id"]]

    with pytest.raises(razorpay.errors.BadRequestError, match="receipt"):
        rzp.order.create({"amount": 100, "currency": "INR", "receipt": order["receipt"]})


def test_real_razorpay_receipt_behaviour_can_be_emulated(
    emulator: RunningEmulator, rzp: razorpay.Client
) -> None:
    emulator.set_faults("razorpay", receipt_idempotent=False)
    first = new_order(rzp, receipt="same-receipt")
    second = new_order(rzp, receipt="same-receipt")
    assert first["id"] != second["id"]
    assert {o["id"] for o in rzp.order.all({"receipt": "same-receipt"})["items"]} == {
        first["id"],
        second["id"],
    }


def test_razorpay_auth_and_validation_errors(
    emulator: RunningEmulator, rzp: razorpay.Client
) -> None:
    wrong = razorpay.Client(auth=(KEY_ID, "not-the-secret"), base_url=emulator.url)
    with pytest.raises(razorpay.errors.BadRequestError, match="Authentication failed"):
        wrong.order.create({"amount": 1000, "currency": "INR"})
    raw = httpx.post(f"{emulator.url}/v1/orders", json={"amount": 1000, "currency": "INR"})
    assert raw.status_code == 401
    assert raw.json()["error"]["code"] == "BAD_REQUEST_ERROR"

    cases = [
        ({"currency": "INR"}, "The amount field is required."),
        ({"amount": 99, "currency": "INR"}, "The amount must be atleast INR 1.00"),
        ({"amount": "12.5", "currency": "INR"}, "The amount must be an integer."),
        ({"amount": 1000, "currency": "XYZ"}, "Currency is not supported"),
        ({"amount": 1000, "currency": "INR", "receipt": "r" * 41}, "40 characters"),
        ({"amount": 1000, "currency": "INR", "bogus": 1}, "bogus is/are not required"),
    ]
    for body, message in cases:
        with pytest.raises(razorpay.errors.BadRequestError, match=message.replace(".", r"\.")):
            rzp.order.create(body)
    with pytest.raises(razorpay.errors.BadRequestError, match="The id provided does not exist"):
        rzp.order.fetch("order_doesnotexist01")
    with pytest.raises(razorpay.errors.BadRequestError, match="does not exist"):
        rzp.payment.fetch("pay_doesnotexist001")


def test_razorpay_payment_fetch_after_pay_and_signature(
    emulator: RunningEmulator, rzp: razorpay.Client
) -> None:
    order = new_order(rzp)
    failed = emulator.fail(order["id"])["payment"]
    assert rzp.order.fetch(order["id"])["status"] == "attempted"
    result = emulator.pay(order["id"], method="upi")
    payment = rzp.payment.fetch(result["payment"]["id"])
    assert payment["id"].startswith("pay_") and payment["entity"] == "payment"
    assert (payment["status"], payment["captured"], payment["method"]) == ("captured", True, "upi")
    assert (payment["amount"], payment["currency"], payment["order_id"]) == (
        149900,
        "INR",
        order["id"],
    )
    assert payment["error_code"] is None

    fetched_failed = rzp.payment.fetch(failed["id"])
    assert (fetched_failed["status"], fetched_failed["captured"]) == ("failed", False)
    assert (
        fetched_failed["error_code"] == "BAD_REQUEST_ERROR" and fetched_failed["error_description"]
    )

    paid = rzp.order.fetch(order["id"])
    assert (paid["status"], paid["amount_paid"], paid["amount_due"], paid["attempts"]) == (
        "paid",
        149900,
        0,
        2,
    )
    payments = rzp.order.payments(order["id"])
    assert payments["entity"] == "collection" and payments["count"] == 2
    assert [p["id"] for p in payments["items"]] == [payment["id"], failed["id"]]

    params = result["redirect_params"]
    assert rzp.utility.verify_payment_signature(params)
    with pytest.raises(razorpay.errors.SignatureVerificationError):
        rzp.utility.verify_payment_signature(params | {"razorpay_payment_id": failed["id"]})

    with pytest.raises(RuntimeError, match="409"):
        emulator.pay(order["id"])  # already paid
    assert emulator.pay(order["id"], force=True, amount=100)["payment"]["amount"] == 100


# ---- hosted checkout page -------------------------------------------------------------------
def test_checkout_page_pay_redirects_to_callback_with_razorpay_signature(
    emulator: RunningEmulator, rzp: razorpay.Client
) -> None:
    order = new_order(rzp, notes={"callback_url": "https://shop.example/paid?x=1"})
    url = emulator.checkout_url(order["id"])
    assert url == checkout_url(order["id"], base_url=emulator.url)
    page = httpx.get(url)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    for needle in ("id='pay-button'", "id='fail-button'", "width=device-width", "₹1,499.00"):
        assert needle in page.text

    with httpx.Client(base_url=emulator.url, follow_redirects=False) as browser:
        pressed = browser.post(f"/checkout/{order['id']}/pay")
    assert pressed.status_code == 303
    location = urlsplit(pressed.headers["location"])
    assert (location.scheme, location.netloc, location.path) == ("https", "shop.example", "/paid")
    query = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert query["x"] == "1" and query["razorpay_order_id"] == order["id"]
    assert rzp.utility.verify_payment_signature(
        {k: query[k] for k in ("razorpay_order_id", "razorpay_payment_id", "razorpay_signature")}
    )
    assert rzp.payment.fetch(query["razorpay_payment_id"])["status"] == "captured"
    assert "disabled" in httpx.get(url).text  # a paid order cannot be paid again from the page


def test_checkout_page_fail_redirects_to_the_registered_callback(
    emulator: RunningEmulator, rzp: razorpay.Client, stripe_client: stripe.StripeClient
) -> None:
    order = new_order(rzp, notes={"callback_url": "http://app.test/back"})
    with httpx.Client(follow_redirects=False) as browser:
        failed = browser.post(f"{emulator.url}/checkout/{order['id']}/fail")
    assert failed.status_code == 303
    assert failed.headers["location"].startswith("http://app.test/back?")
    query = {k: v[0] for k, v in parse_qs(urlsplit(failed.headers["location"]).query).items()}
    assert query["error[code]"] == "BAD_REQUEST_ERROR"
    meta = json.loads(query["error[metadata]"])
    assert meta["order_id"] == order["id"]
    assert rzp.payment.fetch(meta["payment_id"])["status"] == "failed"

    intent = stripe_client.v1.payment_intents.create(
        params={"amount": 2500, "currency": "usd", "metadata": {"return_url": "http://app.test/s"}}
    )
    with httpx.Client(base_url=emulator.url, follow_redirects=False) as browser:
        assert "$25.00" in browser.get(f"/checkout/{intent.id}").text
        done = browser.post(f"/checkout/{intent.id}/pay")
    query = {k: v[0] for k, v in parse_qs(urlsplit(done.headers["location"]).query).items()}
    assert done.headers["location"].startswith("http://app.test/s?")
    assert query["payment_intent"] == intent.id and query["redirect_status"] == "succeeded"
    assert query["payment_intent_client_secret"] == intent.client_secret
    assert stripe_client.v1.payment_intents.retrieve(intent.id).status == "succeeded"

    without_target = new_order(rzp)
    shown = httpx.post(f"{emulator.url}/checkout/{without_target['id']}/pay")
    assert shown.status_code == 200 and "id='razorpay_signature'" in shown.text


def test_checkout_page_is_no_open_redirect(emulator: RunningEmulator, rzp: razorpay.Client) -> None:
    """A URL in the link's query is followed only on the origin registered with the order: a
    link someone crafted cannot send the payer, with fresh payment parameters, elsewhere."""
    evil = "https://evil.example/steal"
    # nothing registered: the link's URL is ignored, the page shows the result
    bare = new_order(rzp)
    with httpx.Client(base_url=emulator.url, follow_redirects=False) as browser:
        page = browser.get(f"/checkout/{bare['id']}", params={"callback_url": evil})
        assert "evil.example" not in page.text
        paid = browser.post(f"/checkout/{bare['id']}/pay", params={"redirect_url": evil})
    assert paid.status_code == 200 and "id='razorpay_signature'" in paid.text
    assert "location" not in paid.headers

    # registered: another origin in the link (or the form) is ignored, the registered URL wins
    order = new_order(rzp, notes={"callback_url": "http://app.test/r"})
    with httpx.Client(base_url=emulator.url, follow_redirects=False) as browser:
        page = browser.get(f"/checkout/{order['id']}", params={"return_url": evil})
        assert "evil.example" not in page.text
        failed = browser.post(f"/checkout/{order['id']}/fail", data={"redirect_url": evil},
                              params={"redirect_url": "http://app.test.evil.example/"})
    assert failed.status_code == 303 and failed.headers["location"].startswith("http://app.test/r?")

    # the same origin with another path (payment_svc's links carry `?return_url=`): kept
    with httpx.Client(base_url=emulator.url, follow_redirects=False) as browser:
        page = browser.get(f"/checkout/{order['id']}", params={"return_url": "http://app.test/other?x=1"})
        action = re.search(r"<form method='post' action='([^']+/pay[^']*)'", page.text)
        assert action is not None
        paid = browser.post(html.unescape(action.group(1)))
    assert paid.status_code == 303 and paid.headers["location"].startswith("http://app.test/other?x=1&")


# ---- Razorpay webhooks ----------------------------------------------------------------------
def test_razorpay_webhooks_are_signed_and_shaped_like_razorpay(
    emulator: RunningEmulator, rzp: razorpay.Client, receiver: Receiver
) -> None:
    order = new_order(rzp)
    payment = emulator.pay(order["id"])["payment"]
    captured, paid = receiver.take(2)
    assert (captured.path, paid.path) == ("/razorpay", "/razorpay")
    first, second = verify_razorpay_webhook(captured), verify_razorpay_webhook(paid)
    assert (first["event"], second["event"]) == ("payment.captured", "order.paid")
    assert first["entity"] == "event" and first["contains"] == ["payment"]
    assert second["contains"] == ["payment", "order"]
    entity = first["payload"]["payment"]["entity"]
    assert (entity["id"], entity["amount"], entity["currency"]) == (payment["id"], 149900, "INR")
    assert (entity["status"], entity["captured"], entity["order_id"]) == (
        "captured",
        True,
        order["id"],
    )
    assert second["payload"]["order"]["entity"]["status"] == "paid"
    assert captured.headers["content-type"] == "application/json"
    assert captured.headers["x-razorpay-event-id"] != paid.headers["x-razorpay-event-id"]
    with pytest.raises(razorpay.errors.SignatureVerificationError):
        razorpay.Client(auth=(KEY_ID, KEY_SECRET)).utility.verify_webhook_signature(
            captured.body.decode(), captured.headers["x-razorpay-signature"], "another-secret"
        )

    emulator.fail(new_order(rzp)["id"])
    (failed,) = receiver.take(1)
    body = verify_razorpay_webhook(failed)
    assert body["event"] == "payment.failed"
    assert body["payload"]["payment"]["entity"]["error_code"] == "BAD_REQUEST_ERROR"


def test_webhooks_are_retried_with_the_same_event_id_until_2xx(
    emulator: RunningEmulator, rzp: razorpay.Client, receiver: Receiver
) -> None:
    emulator.set_faults("razorpay", webhook_drop_events=["order.paid"])
    receiver.statuses.extend([500, 502])
    order = new_order(rzp)
    emulator.pay(order["id"])
    deliveries = receiver.take(3)
    assert len({d.headers["x-razorpay-event-id"] for d in deliveries}) == 1
    assert len({d.body for d in deliveries}) == 1
    for delivery in deliveries:
        verify_razorpay_webhook(delivery)
    log = emulator.wait_for_webhooks(
        lambda log: log["events"][0]["state"] == "delivered", order_id=order["id"]
    )
    captured = next(e for e in log["events"] if e["event"] == "payment.captured")
    assert [a["status"] for a in captured["attempts"]] == [500, 502, 200]
    assert next(e for e in log["events"] if e["event"] == "order.paid")["state"] == "dropped"


def test_webhook_retries_are_bounded(
    emulator: RunningEmulator, rzp: razorpay.Client, receiver: Receiver
) -> None:
    receiver.statuses.extend([503] * 20)
    emulator.set_faults("razorpay", webhook_drop_events=["order.paid"])
    emulator.pay(new_order(rzp)["id"])
    log = emulator.wait_for_webhooks(lambda log: log["events"][0]["state"] == "failed")
    attempts = log["events"][0]["attempts"]
    assert [a["status"] for a in attempts] == [503] * (len(FAST_RETRIES) + 1)
    assert len(receiver.take(len(FAST_RETRIES) + 1)) == len(attempts)
    assert receiver.quiet_for(0.5)  # and no more after the last retry

    with socket.socket() as sock:  # a port nobody listens on: connection refused
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}/hook"
    emulator.set_webhook_targets(razorpay=dead)
    order = new_order(rzp)
    emulator.pay(order["id"])
    log = emulator.wait_for_webhooks(
        lambda log: log["events"] and log["events"][0]["state"] == "failed", order_id=order["id"]
    )
    errors = [a["error"] for a in log["events"][0]["attempts"]]
    assert len(errors) == len(FAST_RETRIES) + 1 and all("Connect" in e for e in errors)


def test_webhook_fault_knobs_duplicate_drop_reorder_hold(
    emulator: RunningEmulator, rzp: razorpay.Client, receiver: Receiver
) -> None:
    emulator.set_faults("razorpay", webhook_duplicate=2)
    emulator.pay(new_order(rzp)["id"])
    got = receiver.take(4)
    events = [json.loads(g.body)["event"] for g in got]
    assert events == ["payment.captured", "payment.captured", "order.paid", "order.paid"]
    assert got[0].headers["x-razorpay-event-id"] == got[1].headers["x-razorpay-event-id"]
    assert got[0].body == got[1].body

    emulator.set_faults("razorpay", webhook_duplicate=1, webhook_reorder=True)
    emulator.pay(new_order(rzp)["id"])
    assert [json.loads(g.body)["event"] for g in receiver.take(2)] == [
        "order.paid",
        "payment.captured",
    ]

    emulator.set_faults("razorpay", webhook_reorder=False, webhook_drop=True)
    order = new_order(rzp)
    emulator.pay(order["id"])
    assert receiver.quiet_for(0.4)
    dropped = emulator.webhooks(order_id=order["id"])["events"]
    assert {e["state"] for e in dropped} == {"dropped"}

    emulator.set_faults("razorpay", webhook_drop=0.0, webhook_hold=True)
    order = new_order(rzp)
    emulator.pay(order["id"])
    assert receiver.quiet_for(0.3)
    assert len(emulator.webhooks(order_id=order["id"])["held"]) == 2
    assert emulator.flush_webhooks() == 2
    assert sorted(json.loads(g.body)["event"] for g in receiver.take(2)) == [
        "order.paid",
        "payment.captured",
    ]

    dropped_id = dropped[0]["id"]
    emulator.control("POST", f"webhooks/{dropped_id}/redeliver")
    (resent,) = receiver.take(1)
    assert resent.headers["x-razorpay-event-id"] == dropped_id


# ---- Stripe ----------------------------------------------------------------------------------
def test_stripe_payment_intents_and_idempotency(
    emulator: RunningEmulator, stripe_client: stripe.StripeClient
) -> None:
    params: Any = {"amount": 149900, "currency": "INR", "metadata": {"order_token": "t-1"}}
    first = stripe_client.v1.payment_intents.create(
        params=params, options={"idempotency_key": "idem-1"}
    )
    second = stripe_client.v1.payment_intents.create(
        params=params, options={"idempotency_key": "idem-1"}
    )
    assert first.id == second.id and first.id.startswith("pi_")
    assert second.last_response is not None
    assert second.last_response.headers.get("Idempotent-Replayed") == "true"
    assert (first.amount, first.currency, first.status) == (
        149900,
        "inr",
        "requires_payment_method",
    )
    assert first.metadata["order_token"] == "t-1" and (first.client_secret or "").startswith(
        first.id
    )
    with pytest.raises(stripe.IdempotencyError, match="same parameters"):
        stripe_client.v1.payment_intents.create(
            params=params | {"amount": 100}, options={"idempotency_key": "idem-1"}
        )
    other = stripe_client.v1.payment_intents.create(
        params=params, options={"idempotency_key": "idem-2"}
    )
    assert other.id != first.id
    assert len(emulator.state()["stripe"]["payment_intents"]) == 2

    fetched = stripe_client.v1.payment_intents.retrieve(first.id)
    assert fetched.id == first.id and fetched.amount == 149900
    with pytest.raises(stripe.InvalidRequestError) as missing:
        stripe_client.v1.payment_intents.retrieve("pi_missing")
    assert missing.value.http_status == 404 and missing.value.code == "resource_missing"
    with pytest.raises(stripe.InvalidRequestError, match="Missing required param: amount") as bad:
        missing_amount: Any = {"currency": "inr"}
        stripe_client.v1.payment_intents.create(params=missing_amount)
    assert bad.value.param == "amount"
    with pytest.raises(stripe.InvalidRequestError, match="unknown parameter"):
        unknown_param: Any = {"amount": 100, "currency": "inr", "x": "1"}
        stripe_client.v1.payment_intents.create(params=unknown_param)
    wrong = stripe.StripeClient("sk_test_wrong", base_addresses={"api": emulator.url})
    with pytest.raises(stripe.AuthenticationError):
        wrong.v1.payment_intents.retrieve(first.id)


def test_stripe_webhooks_verify_with_construct_event(
    emulator: RunningEmulator, stripe_client: stripe.StripeClient, receiver: Receiver
) -> None:
    intent = stripe_client.v1.payment_intents.create(
        params={"amount": 5000, "currency": "eur", "metadata": {"order_token": "ö-1"}}
    )
    emulator.fail(intent.id)
    emulator.pay(intent.id)
    failed, succeeded = receiver.take(2)
    assert failed.path == "/stripe" and failed.headers["stripe-signature"].startswith("t=")
    event = stripe.Webhook.construct_event(
        failed.body, failed.headers["stripe-signature"], STRIPE_WEBHOOK_SECRET
    )
    assert event.type == "payment_intent.payment_failed" and event.id.startswith("evt_")
    assert event.data.object.id == intent.id
    assert event.data.object.last_payment_error.code == "card_declined"
    event = stripe.Webhook.construct_event(
        succeeded.body.decode(), succeeded.headers["stripe-signature"], STRIPE_WEBHOOK_SECRET
    )
    assert event.type == "payment_intent.succeeded"
    assert (event.data.object.amount_received, event.data.object.currency) == (5000, "eur")
    assert event.data.object.metadata["order_token"] == "ö-1"
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(
            succeeded.body, succeeded.headers["stripe-signature"], "whsec_other"
        )


# ---- faults as the SDKs see them -----------------------------------------------------------
def test_latency_and_timeouts(
    emulator: RunningEmulator, rzp: razorpay.Client, stripe_client: stripe.StripeClient
) -> None:
    order = new_order(rzp)
    emulator.set_faults("all", latency_ms=300)
    started = time.monotonic()
    rzp.order.fetch(order["id"])
    assert time.monotonic() - started >= 0.3

    emulator.set_faults("all", latency_ms=0, timeout_s=2)
    with pytest.raises(requests.exceptions.ReadTimeout):
        rzp.order.fetch(order["id"], timeout=0.3)  # the SDK has no timeout of its own
    patient = stripe.StripeClient(
        STRIPE_KEY,
        base_addresses={"api": emulator.url},
        http_client=stripe.RequestsClient(timeout=0.3),
    )
    with pytest.raises(stripe.APIConnectionError, match="Read timed out"):
        patient.v1.payment_intents.retrieve("pi_whatever")
    emulator.set_faults("all", timeout_s=0)
    assert rzp.order.fetch(order["id"])["id"] == order["id"]


def test_a_hanging_call_is_in_flight_until_answered_or_abandoned(
    emulator: RunningEmulator, rzp: razorpay.Client
) -> None:
    order = new_order(rzp)
    emulator.set_faults("razorpay", timeout_s=30)  # far longer than this test: still hanging below
    basic = base64.b64encode(f"{KEY_ID}:{KEY_SECRET}".encode()).decode()
    waiting = socket.create_connection(("127.0.0.1", emulator.port))  # a client that waits for its answer
    waiting.sendall(f"GET /v1/orders/{order['id']} HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {basic}\r\n\r\n"
                    .encode())
    listed = wait_for(lambda: emulator.control("GET", "requests")["in_flight"])
    assert [(c["method"], c["path"]) for c in listed] == [("GET", f"/v1/orders/{order['id']}")]
    assert [r["method"] for r in emulator.control("GET", "requests")["requests"]] == ["POST"]  # only the create

    # the client gives up and hangs up: the call is dropped as a server drops work for a gone client
    waiting.close()
    wait_for(lambda: not emulator.control("GET", "requests")["in_flight"])
    abandoned = emulator.control("GET", "requests")["requests"][-1]
    assert (abandoned["method"], abandoned["status"], abandoned["cancelled"]) == ("GET", None, True)
    assert abandoned["ms"] < 5000

    # requests gives up on a read timeout and closes its connection the same way
    with pytest.raises(requests.exceptions.ReadTimeout):
        rzp.order.fetch(order["id"], timeout=0.3)
    wait_for(lambda: not emulator.control("GET", "requests")["in_flight"])
    emulator.set_faults("razorpay", timeout_s=0)
    rzp.order.fetch(order["id"])
    assert [r["cancelled"] for r in emulator.control("GET", "requests")["requests"]] == [False, True, True, False]


def wait_for(check: Any, timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)
    return value


def test_error_rate_and_down(
    emulator: RunningEmulator, rzp: razorpay.Client, stripe_client: stripe.StripeClient
) -> None:
    emulator.set_faults("razorpay", error_rate=1.0, error_statuses=[500])
    with pytest.raises(razorpay.errors.ServerError):
        new_order(rzp)
    emulator.set_faults("razorpay", error_statuses=[502])
    with pytest.raises(razorpay.errors.GatewayError):
        new_order(rzp)
    emulator.set_faults("stripe", error_rate=1.0, error_statuses=[500])
    with pytest.raises(stripe.APIError) as error:
        stripe_client.v1.payment_intents.create(params={"amount": 100, "currency": "inr"})
    assert error.value.http_status == 500

    emulator.set_faults("all", error_rate=0.0, down=True)
    with pytest.raises(razorpay.errors.ServerError):
        new_order(rzp)
    with pytest.raises(stripe.APIError) as error:
        stripe_client.v1.payment_intents.retrieve("pi_x")
    assert error.value.http_status == 503
    emulator.set_faults("all", down_mode="reset")
    with pytest.raises(requests.exceptions.ConnectionError):
        new_order(rzp)
    with pytest.raises(stripe.APIConnectionError):
        stripe_client.v1.payment_intents.retrieve("pi_x")

    emulator.set_faults("all", down=False)
    assert new_order(rzp)["status"] == "created"


def test_lost_responses_are_safe_to_retry(emulator: RunningEmulator, rzp: razorpay.Client) -> None:
    """error_phase=after: the call takes effect but the client sees a 5xx. Retrying with the
    same receipt (Razorpay) or the SDK's own retry with the same Idempotency-Key (Stripe) gives
    the object that was created, not a second one."""
    emulator.set_faults("all", error_rate=1.0, error_statuses=[500], error_phase="after")
    with pytest.raises(razorpay.errors.ServerError):
        rzp.order.create({"amount": 5000, "currency": "INR", "receipt": "lost-1"})
    emulator.set_faults("razorpay", error_rate=0.0)
    order = rzp.order.create({"amount": 5000, "currency": "INR", "receipt": "lost-1"})
    assert len(emulator.state()["razorpay"]["orders"]) == 1 and order["receipt"] == "lost-1"

    retrying = stripe.StripeClient(
        STRIPE_KEY, base_addresses={"api": emulator.url}, max_network_retries=2
    )
    with pytest.raises(stripe.APIError):
        retrying.v1.payment_intents.create(params={"amount": 5000, "currency": "inr"})
    calls = [r for r in emulator.control("GET", "requests")["requests"] if r["area"] == "stripe"]
    assert len(calls) == 3 and len({c["idempotency_key"] for c in calls}) == 1
    assert len(emulator.state()["stripe"]["payment_intents"]) == 1
    emulator.set_faults("stripe", error_rate=0.0)
    key = calls[0]["idempotency_key"]
    again = retrying.v1.payment_intents.create(
        params={"amount": 5000, "currency": "inr"}, options={"idempotency_key": key}
    )
    assert again.id == emulator.state()["stripe"]["payment_intents"][0]["id"]


def test_control_api_state_faults_and_reset(
    emulator: RunningEmulator, rzp: razorpay.Client
) -> None:
    order = new_order(rzp)
    state = emulator.state()
    assert [o["id"] for o in state["razorpay"]["orders"]] == [order["id"]]
    assert (
        state["razorpay"]["orders"][0]["checkout_url"] == f"{emulator.url}/checkout/{order['id']}"
    )
    assert state["api_calls"] == {"razorpay": 1}
    with pytest.raises(RuntimeError, match="unknown fault knob"):
        emulator.set_faults("razorpay", lateness=5)
    with pytest.raises(RuntimeError, match="between 0 and 1"):
        emulator.set_faults("stripe", error_rate=2)
    with pytest.raises(RuntimeError, match="404"):
        emulator.pay("order_nope")
    emulator.set_faults("stripe", latency_ms=5)
    assert emulator.control("GET", "faults")["stripe"]["latency_ms"] == 5
    emulator.reset()
    state = emulator.state()
    assert state["razorpay"]["orders"] == [] and state["faults"]["stripe"]["latency_ms"] == 0
    with pytest.raises(razorpay.errors.BadRequestError):
        rzp.order.fetch(order["id"])
    assert httpx.post(f"{emulator.url}/_emulator/faults", content=b"{nope").status_code == 400


# ---- the command line ------------------------------------------------------------------------
def test_cli_serves_logs_json_and_stops_on_sigterm(receiver: Receiver, tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {
        **os.environ,
        "RAZORPAY_KEY_SECRET": "cli-secret",
        "RAZORPAY_WEBHOOK_SECRET": "cli-hook-secret,older-secret",
        "EMULATOR_PUBLIC_URL": "http://checkout.test",
        "EMULATOR_WEBHOOK_RETRY_DELAYS": "0.05",
    }
    log_path = tmp_path / "emulator.log"
    log_file = log_path.open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gateway_emulator",
            "--port",
            str(port),
            "--webhook-razorpay",
            f"{receiver.url}/cli",
            "--webhook-stripe",
            "",
            "--fault",
            "razorpay.webhook_duplicate=2",
        ],
        cwd=PROJECT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log_file,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 10
        while True:
            try:
                if httpx.get(f"{base}/_emulator/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline and process.poll() is None, "emulator did not start"
            time.sleep(0.05)
        client = razorpay.Client(auth=(KEY_ID, "cli-secret"), base_url=base)
        order = client.order.create({"amount": 1000, "currency": "INR"})
        state = httpx.get(f"{base}/_emulator/state").json()
        assert (
            state["razorpay"]["orders"][0]["checkout_url"]
            == f"http://checkout.test/checkout/{order['id']}"
        )
        assert state["webhook_targets"] == {"razorpay": f"{receiver.url}/cli", "stripe": None}
        httpx.post(f"{base}/_emulator/orders/{order['id']}/pay")
        got = receiver.take(4)
        utility = razorpay.Client(auth=(KEY_ID, "cli-secret")).utility
        assert all(
            utility.verify_webhook_signature(
                g.body.decode(), g.headers["x-razorpay-signature"], "cli-hook-secret"
            )
            for g in got
        )
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)
        log_file.close()
    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    messages = [line["msg"] for line in lines]
    assert "listening" in messages and "stopped" in messages
    assert any(line["msg"] == "request" and line.get("path") == "/v1/orders" for line in lines)
