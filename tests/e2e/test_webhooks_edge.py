"""Webhooks through the real edge: Envoy transcodes POST /api/v1/webhooks/{razorpay,stripe} into
the HttpBody RPCs (raw bytes, headers as metadata), with real `python -m cart_svc`, `order_svc`,
`payment_svc` and `enrollment_svc` processes, and the real gateway emulator
delivering signed webhooks to the edge.

The checkout is driven over REST only: cart → order (bearer) → the emulator's customer pays →
Razorpay's / Stripe's webhook reaches the edge → GET /api/v1/order/{token} is `paid`, then
`fulfilled` with an enrollment_id once the enrollment consumer (over NATS JetStream, fed by the
outbox relay) has done its part, with exactly one enrollment for the order. A forged
webhook is 400 in the contract's envelope with code 3101. A webhook the emulator drops is
picked up by payment_svc's background reconciler (PAYMENT_RECONCILE_AFTER=2 here).
"""

from __future__ import annotations

import calendar
import datetime
import hashlib
import hmac
import uuid
from collections.abc import Iterator

import httpx
import pytest

from gateway_emulator import RunningEmulator, start_emulator
from tests.e2e.stack import Stack, order_when, running_stack, timestamp

pytestmark = pytest.mark.timeout(240)

BACKEND_1M = "7a1e0000-0000-4000-8000-000000000101"  # 1499.00 INR in the sample catalog
# three lines of three internships, each plan with its own period: (internship, plan, months)
THREE_LINES = (("5b7f6a2e-1c1d-4c3a-9f55-0d0c1a000001", BACKEND_1M, 1),
               ("5b7f6a2e-1c1d-4c3a-9f55-0d0c1a000002", "7a1e0000-0000-4000-8000-000000000203", 3),
               ("5b7f6a2e-1c1d-4c3a-9f55-0d0c1a000003", "7a1e0000-0000-4000-8000-000000000306", 6))
RAZORPAY_WEBHOOK_SECRET = "dev-webhook-secret"


@pytest.fixture(scope="module")
def emulator() -> Iterator[RunningEmulator]:
    running = start_emulator(port=0, webhook_razorpay_url=None, webhook_stripe_url=None,
                             webhook_retry_delays=(0.2, 0.5, 1.0, 2.0))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def edge_stack(module_launcher, settings, cart_engine, admin_engine, emulator) -> Iterator[Stack]:
    """`cart_engine` first: it loads the sample catalog into the session's database."""
    env = {"RAZORPAY_BASE_URL": emulator.url, "STRIPE_BASE_URL": emulator.url,
           "PAYMENT_RECONCILE_AFTER": "2", "PAYMENT_RECONCILE_INTERVAL": "0.5",
           "PAYMENT_SWEEP_INTERVAL": "0"}
    with running_stack(module_launcher, settings, admin_engine, services=("cart", "order", "payment", "enrollment"),
                       env=env) as stack:
        emulator.set_webhook_targets(razorpay=f"{stack.url}/api/v1/webhooks/razorpay",
                                     stripe=f"{stack.url}/api/v1/webhooks/stripe")
        yield stack


@pytest.fixture
def api(edge_stack) -> Iterator[httpx.Client]:
    with edge_stack.client() as client:
        yield client


def place_order(stack: Stack, api: httpx.Client, user: str, gateway: str = "razorpay",
                plans: tuple[str, ...] = (BACKEND_1M,)) -> dict:
    headers = stack.bearer(user)
    cart = api.post("/api-proxy/api/cart", json={"items": [{"plan_id": plan, "quantity": 1} for plan in plans]},
                    headers=headers)
    assert cart.status_code == 200, cart.text
    response = api.post("/api/v1/order", json={"cart_token": cart.json()["token"], "gateway": gateway},
                        headers={**headers, "Idempotency-Key": str(uuid.uuid4())})
    assert response.status_code == 200, response.text
    order = response.json()
    assert order["status"] in ("pending", "awaiting_payment") and order["payment"]["gateway"] == gateway
    return order


def order_until(stack: Stack, api: httpx.Client, user: str, order_token: str, statuses: set[str],
                timeout: float = 30.0) -> dict:
    return order_when(api, stack.bearer(user), order_token, lambda order: order["status"] in statuses, timeout)


def check_fulfilled(stack: Stack, api: httpx.Client, user: str, order: dict) -> None:
    """Fulfilled, with exactly one enrollment for the order (the consumer got one capture event)."""
    assert order["status"] == "fulfilled" and order["enrollment_id"], order
    response = api.get("/api/v1/enrollments", headers=stack.bearer(user))
    assert response.status_code == 200, response.text
    mine = [e for e in response.json()["enrollments"] if e["order_token"] == order["order_token"]]
    assert [e["enrollment_id"] for e in mine] == [order["enrollment_id"]], mine


@pytest.mark.parametrize("gateway", ["razorpay", "stripe"])
def test_a_paid_order_is_paid_through_the_webhook(edge_stack, api, emulator, gateway):
    user = str(uuid.uuid4())
    order = place_order(edge_stack, api, user, gateway)
    gateway_order_id = order["payment"]["gateway_order_id"]

    emulator.pay(gateway_order_id)
    log = emulator.wait_for_webhooks(lambda log: log["events"] and all(e["state"] == "delivered" for e in log["events"]),
                                     timeout=20, order_id=gateway_order_id)
    first_attempts = [e["attempts"][0]["status"] for e in log["events"]]
    assert first_attempts == [200] * len(log["events"]), log  # accepted at the first try, through Envoy

    paid = order_until(edge_stack, api, user, order["order_token"], {"paid", "fulfilled"}, timeout=10)
    assert paid["payment"]["status"] == "captured"
    fulfilled = order_until(edge_stack, api, user, order["order_token"], {"fulfilled"})
    check_fulfilled(edge_stack, api, user, fulfilled)


def test_a_forged_webhook_through_the_edge_is_400_3101(edge_stack, api, expect_envelope):
    body = b'{"entity":"event","event":"payment.captured","payload":{"payment":{"entity":{"id":"pay_Forged1"}}}}'
    forged = hmac.new(b"not-the-secret", body, hashlib.sha256).hexdigest()
    response = api.post("/api/v1/webhooks/razorpay", content=body,
                        headers={"Content-Type": "application/json", "X-Razorpay-Signature": forged,
                                 "X-Razorpay-Event-Id": "evt_Forged0000001"})
    error = expect_envelope(response, 400, 3101)
    assert error["retryable"] is False
    unsigned = api.post("/api/v1/webhooks/stripe", content=b'{"id": "evt_1", "type": "payment_intent.succeeded"}',
                        headers={"Content-Type": "application/json"})
    expect_envelope(unsigned, 400, 3101)


def test_the_edge_passes_the_body_byte_for_byte(edge_stack, api):
    """Escapes, non-ASCII and a trailing newline survive Envoy: the signature over them still holds."""
    body = ('{"entity":"event","event":"payment.authorized","payload":{"note":"a\\/b caf\\u00e9 ₹",'
            f'"n":"{uuid.uuid4()}"}},"created_at":1767225600}}\n').encode()
    signature = hmac.new(RAZORPAY_WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    event_id = f"evt_{uuid.uuid4().hex[:14]}"
    headers = {"Content-Type": "application/json", "X-Razorpay-Signature": signature, "X-Razorpay-Event-Id": event_id}
    first = api.post("/api/v1/webhooks/razorpay", content=body, headers=headers)
    assert first.status_code == 200, first.text
    assert first.json() == {"received": True, "duplicate": False, "event_id": event_id}
    assert first.headers.get("x-correlation-id")
    again = api.post("/api/v1/webhooks/razorpay", content=body, headers=headers)
    assert again.status_code == 200 and again.json()["duplicate"] is True


def test_a_dropped_webhook_is_reconciled_by_the_running_service(edge_stack, api, emulator):
    user = str(uuid.uuid4())
    order = place_order(edge_stack, api, user)
    gateway_order_id = order["payment"]["gateway_order_id"]
    emulator.set_faults("razorpay", webhook_drop=True)
    try:
        emulator.pay(gateway_order_id)
        emulator.wait_for_webhooks(lambda log: len(log["events"]) == 2 and all(
            e["state"] == "dropped" for e in log["events"]), order_id=gateway_order_id)
    finally:
        emulator.set_faults("razorpay", webhook_drop=False)
    final = order_until(edge_stack, api, user, order["order_token"], {"fulfilled"}, timeout=40)
    check_fulfilled(edge_stack, api, user, final)


def months_later(start: datetime.datetime, months: int) -> datetime.datetime:
    """The same day and time `months` calendar months on (clamped to the month's last day)."""
    year, month = divmod(start.month - 1 + months, 12)
    year += start.year
    return start.replace(year=year, month=month + 1, day=min(start.day, calendar.monthrange(year, month + 1)[1]))


def test_an_order_of_three_lines_is_fulfilled_with_an_enrollment_per_line(edge_stack, api, emulator):
    """Every line is enrolled (issue 10): one enrollment per line, each with its own internship, plan
    and dates, all listed by GET /api/v1/enrollments, and the order fulfilled once."""
    user = str(uuid.uuid4())
    before = datetime.datetime.now(datetime.UTC)
    order = place_order(edge_stack, api, user, plans=tuple(plan for _, plan, _ in THREE_LINES))
    assert order["total"] == "11560.46"  # (1499 + 3499 + 4799) x 1.18 (IGST, no billing)

    emulator.pay(order["payment"]["gateway_order_id"])
    fulfilled = order_until(edge_stack, api, user, order["order_token"], {"fulfilled"})

    assert fulfilled["payment"]["status"] == "captured"
    response = api.get("/api/v1/enrollments", headers=edge_stack.bearer(user))
    assert response.status_code == 200, response.text
    mine = [e for e in response.json()["enrollments"] if e["order_token"] == order["order_token"]]
    assert len(mine) == 3 == len({e["enrollment_id"] for e in mine}), mine
    assert fulfilled["enrollment_id"] in {e["enrollment_id"] for e in mine}
    by_plan = {e["plan_id"]: e for e in mine}
    assert set(by_plan) == {plan for _, plan, _ in THREE_LINES}, mine
    after = datetime.datetime.now(datetime.UTC)
    for internship, plan, months in THREE_LINES:
        enrollment = by_plan[plan]
        assert (enrollment["internship_id"], enrollment["user_id"], enrollment["status"]) == (internship, user, "active")
        starts, ends = timestamp(enrollment["starts_at"]), timestamp(enrollment["ends_at"])
        assert before.replace(microsecond=0) <= starts <= after, enrollment  # printed to the second
        assert ends == months_later(starts, months), enrollment
