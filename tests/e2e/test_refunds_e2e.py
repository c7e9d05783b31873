"""Refunds through the real edge (CONTRACT.md Additions "Refunds (admin)"): real cart_svc,
order_svc, payment_svc and enrollment_svc processes, the real gateway emulator paying orders and
refunding them, its webhooks signed and delivered to the edge.

Every order here is one 1-month Backend plan (1499.00 INR) with IGST 18 % (no billing given):
total 1499.00 + 269.82 = 1768.82 INR, captured whole.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal

import httpx
import pytest

from gateway_emulator import RunningEmulator, start_emulator
from tests.e2e.stack import Stack, json_ok, order_when, running_stack

pytestmark = pytest.mark.timeout(300)

BACKEND_1M = "7a1e0000-0000-4000-8000-000000000101"  # 1499.00 INR in the sample catalog
TOTAL = Decimal("1768.82")
REFUND_FIELDS = {"refund_id", "order_token", "amount", "currency", "status", "gateway", "gateway_refund_id", "reason",
                 "created_at"}


@pytest.fixture(scope="module")
def emulator() -> Iterator[RunningEmulator]:
    running = start_emulator(port=0, webhook_razorpay_url=None, webhook_stripe_url=None,
                             webhook_retry_delays=(0.2, 0.5, 1.0, 2.0))
    running.set_faults("all", refund_settle_ms=200)  # a refund is answered `pending`, then settles
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def edge_stack(module_launcher, settings, cart_engine, admin_engine, emulator) -> Iterator[Stack]:
    env = {"RAZORPAY_BASE_URL": emulator.url, "STRIPE_BASE_URL": emulator.url, "PAYMENT_RECONCILE_AFTER": "2",
           "PAYMENT_RECONCILE_INTERVAL": "0.5", "PAYMENT_SWEEP_INTERVAL": "0"}
    with running_stack(module_launcher, settings, admin_engine, services=("cart", "order", "payment", "enrollment"),
                       env=env) as stack:
        emulator.set_webhook_targets(razorpay=f"{stack.url}/api/v1/webhooks/razorpay",
                                     stripe=f"{stack.url}/api/v1/webhooks/stripe")
        yield stack


@pytest.fixture
def api(edge_stack) -> Iterator[httpx.Client]:
    with edge_stack.client(timeout=30) as client:
        yield client


def paid_order(stack: Stack, api: httpx.Client, emulator: RunningEmulator, gateway: str = "razorpay") -> dict:
    """A new user's order, paid at the emulator, `fulfilled` (its enrollment exists)."""
    user = str(uuid.uuid4())
    headers = stack.bearer(user)
    cart = json_ok(api.post("/api-proxy/api/cart", json={"items": [{"plan_id": BACKEND_1M, "quantity": 1}]},
                            headers=headers))
    order = json_ok(api.post("/api/v1/order", json={"cart_token": cart["token"], "gateway": gateway},
                             headers={**headers, "Idempotency-Key": str(uuid.uuid4())}))
    assert order["total"] == "1768.82", order
    emulator.pay(order["payment"]["gateway_order_id"])
    order = order_when(api, headers, order["order_token"], lambda o: o["status"] == "fulfilled")
    order["user"] = user
    return order


def refund(api: httpx.Client, stack: Stack, order_token: str, key: str | None = None, **body: str) -> httpx.Response:
    headers = stack.admin()
    if key is not None:
        headers["Idempotency-Key"] = key
    return api.post(f"/api/v1/admin/orders/{order_token}/refunds", json=body, headers=headers)


def refunds_when(api: httpx.Client, stack: Stack, order_token: str, done: Callable[[list[dict]], bool],
                 timeout: float = 20.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        listed = json_ok(api.get(f"/api/v1/admin/orders/{order_token}/refunds", headers=stack.admin()))["refunds"]
        if done(listed):
            return listed
        if time.monotonic() > deadline:
            raise AssertionError(f"refunds of {order_token} stayed {listed} for {timeout}s")
        time.sleep(0.1)


def enrollments_when(api: httpx.Client, headers: dict[str, str], order_token: str,
                     done: Callable[[list[dict]], bool], timeout: float = 20.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        mine = [e for e in json_ok(api.get("/api/v1/enrollments", headers=headers))["enrollments"]
                if e["order_token"] == order_token]
        if done(mine):
            return mine
        if time.monotonic() > deadline:
            raise AssertionError(f"enrollments of {order_token} stayed {mine} for {timeout}s")
        time.sleep(0.1)


def all_processed(listed: list[dict]) -> bool:
    return bool(listed) and all(r["status"] == "processed" for r in listed)


@pytest.mark.parametrize("gateway", ["razorpay", "stripe"])
def test_a_full_refund_by_default_is_processed_through_the_webhook(edge_stack, api, emulator, gateway):
    order = paid_order(edge_stack, api, emulator, gateway)
    made = json_ok(refund(api, edge_stack, order["order_token"], reason="student withdrew"))
    assert set(made) == REFUND_FIELDS, made
    assert (made["order_token"], made["amount"], made["currency"], made["gateway"], made["reason"]) == (
        order["order_token"], "1768.82", "INR", gateway, "student withdrew")
    assert made["status"] in ("pending", "processed") and made["gateway_refund_id"].startswith("rfnd_" if gateway == "razorpay" else "re_")
    [settled] = refunds_when(api, edge_stack, order["order_token"], all_processed)
    assert (settled["refund_id"], settled["amount"]) == (made["refund_id"], "1768.82")

    owner = edge_stack.bearer(order["user"])
    refunded = order_when(api, owner, order["order_token"], lambda o: o["status"] == "refunded")
    assert refunded["refunded_amount"] == "1768.82" and refunded["total"] == "1768.82"
    enrollments = enrollments_when(api, owner, order["order_token"],
                                   lambda es: bool(es) and all(e["status"] == "cancelled" for e in es))
    assert [e["enrollment_id"] for e in enrollments] == [order["enrollment_id"]]
    note = api.get(f"/api/v1/order/{order['order_token']}/credit-notes/{made['refund_id']}", headers=owner)
    assert note.status_code == 200 and note.headers["content-type"] == "application/pdf", note.text[:300]


def test_partial_refunds_then_what_is_left_then_3301(edge_stack, api, emulator, expect_envelope):
    order = paid_order(edge_stack, api, emulator)
    token = order["order_token"]
    first = json_ok(refund(api, edge_stack, token, amount="500.00"))
    second = json_ok(refund(api, edge_stack, token, amount="268.8"))
    assert (first["amount"], second["amount"]) == ("500.00", "268.80")
    over = expect_envelope(refund(api, edge_stack, token, amount="1000.03"), 409, 3301)  # 1000.02 is left
    assert "1000.02" in over["message"], over
    rest = json_ok(refund(api, edge_stack, token))  # default: all that is left
    assert rest["amount"] == "1000.02"
    expect_envelope(refund(api, edge_stack, token, amount="0.01"), 409, 3301)
    expect_envelope(refund(api, edge_stack, token), 409, 3301)
    listed = refunds_when(api, edge_stack, token, lambda rs: len(rs) == 3 and all_processed(rs))
    assert [r["amount"] for r in listed] == ["500.00", "268.80", "1000.02"]
    owner = edge_stack.bearer(order["user"])
    final = order_when(api, owner, token, lambda o: o["status"] == "refunded")
    assert final["refunded_amount"] == "1768.82"


def test_a_partial_refund_keeps_the_order_and_its_enrollment(edge_stack, api, emulator):
    order = paid_order(edge_stack, api, emulator, "stripe")
    made = json_ok(refund(api, edge_stack, order["order_token"], amount="768.82"))
    refunds_when(api, edge_stack, order["order_token"], all_processed)
    owner = edge_stack.bearer(order["user"])
    partly = order_when(api, owner, order["order_token"], lambda o: o["refunded_amount"] == "768.82")
    assert partly["status"] == "fulfilled"
    [enrollment] = enrollments_when(api, owner, order["order_token"], bool)
    assert enrollment["status"] == "active"
    note = api.get(f"/api/v1/order/{order['order_token']}/credit-notes/{made['refund_id']}", headers=owner)
    assert note.status_code == 200 and note.content.startswith(b"%PDF"), note.text[:300]


def test_not_paid_is_3302_and_bad_input_is_1000_and_others_are_refused(edge_stack, api, emulator, expect_envelope):
    user = str(uuid.uuid4())
    headers = edge_stack.bearer(user)
    cart = json_ok(api.post("/api-proxy/api/cart", json={"items": [{"plan_id": BACKEND_1M, "quantity": 1}]},
                            headers=headers))
    unpaid = json_ok(api.post("/api/v1/order", json={"cart_token": cart["token"]}, headers=headers))
    expect_envelope(refund(api, edge_stack, unpaid["order_token"]), 409, 3302)
    expect_envelope(refund(api, edge_stack, str(uuid.uuid4())), 409, 3302)  # payment_svc knows no such order
    bad = expect_envelope(refund(api, edge_stack, unpaid["order_token"], amount="-1", reason="x" * 256), 400, 1000)
    assert sorted(m.split(":")[0] for m in bad["validation_messages"]) == ["amount", "reason"], bad
    control = expect_envelope(refund(api, edge_stack, unpaid["order_token"], reason="a\x01b"), 400, 1000)
    assert control["validation_messages"][0].startswith("reason"), control
    for amount in ("0", "0.00", "1.234", "1e3", "abc", " 10"):
        error = expect_envelope(refund(api, edge_stack, unpaid["order_token"], amount=amount), 400, 1000)
        assert error["validation_messages"][0].startswith("amount:"), (amount, error)
    path = f"/api/v1/admin/orders/{unpaid['order_token']}/refunds"
    expect_envelope(api.post(path, json={}), 401, 1101)
    expect_envelope(api.post(path, json={}, headers=headers), 403, 1102)
    expect_envelope(api.get(path, headers=headers), 403, 1102)
    assert json_ok(api.get(path, headers=edge_stack.admin())) == {"refunds": []}


def test_the_same_key_replays_and_another_body_is_2005(edge_stack, api, emulator, expect_envelope):
    order = paid_order(edge_stack, api, emulator)
    key = str(uuid.uuid4())
    first = json_ok(refund(api, edge_stack, order["order_token"], key, amount="100.00"))
    again = json_ok(refund(api, edge_stack, order["order_token"], key, amount="100.00"))
    assert again == first
    expect_envelope(refund(api, edge_stack, order["order_token"], key, amount="100.01"), 409, 2005)
    listed = refunds_when(api, edge_stack, order["order_token"], all_processed)
    assert [r["refund_id"] for r in listed] == [first["refund_id"]]
    at_gateway = [r for r in emulator.state()["refunds"] if r["notes"].get("refund_id") == first["refund_id"]]
    assert len(at_gateway) == 1, at_gateway


async def test_twenty_concurrent_refunds_never_exceed_the_captured_amount(edge_stack, api, emulator):
    """20 requests of 100.00 at once against 1768.82 captured: 17 fit (1700.00), 3 are 3301."""
    order = paid_order(edge_stack, api, emulator)
    token = order["order_token"]
    barrier = threading.Barrier(20)

    def one(_: int) -> httpx.Response:
        with edge_stack.client(timeout=30) as client:
            barrier.wait(timeout=30)
            return refund(client, edge_stack, token, str(uuid.uuid4()), amount="100.00")

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(one, range(20)))
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [200] * 17 + [409] * 3, [(r.status_code, r.text[:200]) for r in answers]
    assert {r.json()["error"]["code"] for r in answers if r.status_code == 409} == {3301}
    [row] = await edge_stack.rows(
        "SELECT count(*) AS n, sum(amount) AS total FROM payment.refunds WHERE order_token = :t AND status <> 'failed'",
        t=token)
    assert (row.n, row.total) == (17, Decimal("1700.00"))
    listed = refunds_when(api, edge_stack, token, lambda rs: len(rs) == 17 and all_processed(rs), timeout=40)
    assert sum(Decimal(r["amount"]) for r in listed) == Decimal("1700.00") <= TOTAL
    at_gateway = [r for r in emulator.state()["refunds"] if r["notes"].get("order_token") == token]
    assert len(at_gateway) == 17 and sum(r["amount"] for r in at_gateway) == 170000


async def test_duplicate_refund_webhooks_settle_once(edge_stack, api, emulator):
    order = paid_order(edge_stack, api, emulator)
    emulator.set_faults("razorpay", webhook_duplicate=3)
    try:
        made = json_ok(refund(api, edge_stack, order["order_token"], amount="10.00"))
        refunds_when(api, edge_stack, order["order_token"], all_processed)
        emulator.wait_for_webhooks(
            lambda log: sum(1 for a in log["attempts"] if a["event"] == "refund.processed" and a["status"] == 200) == 3,
            timeout=20, order_id=order["payment"]["gateway_order_id"])
    finally:
        emulator.set_faults("razorpay", webhook_duplicate=1)
    events = await edge_stack.rows("SELECT subject FROM payment.outbox WHERE payload->>'refund_id' = :r", r=made["refund_id"])
    assert [e.subject for e in events] == ["checkout.payment.refund_processed"]
    audits = await edge_stack.rows(
        "SELECT action FROM payment.audit_log WHERE entity_type = 'refund' AND entity_id = :r ORDER BY id",
        r=made["refund_id"])
    actions = [a.action for a in audits]
    # refund:submitted (the gateway's refund id noted) comes from the create's answer or from the
    # refund.created webhook, whichever is first; or not at all when refund.processed beats both
    assert actions[0] == "refund:requested" and actions[-1] == "refund:processed", actions
    assert set(actions[1:-1]) <= {"refund:submitted"} and len(actions) <= 3, actions


def test_a_refused_refund_fails_and_frees_its_amount(edge_stack, api, emulator):
    order = paid_order(edge_stack, api, emulator)
    emulator.set_faults("razorpay", refund_reject_rate=1.0)
    try:
        refused = json_ok(refund(api, edge_stack, order["order_token"]))
    finally:
        emulator.set_faults("razorpay", refund_reject_rate=0.0)
    assert (refused["status"], refused["amount"], refused["gateway_refund_id"]) == ("failed", "1768.82", "")
    again = json_ok(refund(api, edge_stack, order["order_token"]))
    assert again["amount"] == "1768.82"  # the failed refund held nothing
    refunds_when(api, edge_stack, order["order_token"],
                 lambda rs: [r["status"] for r in rs] == ["failed", "processed"])


def test_a_refund_the_gateway_fails_later_is_failed_by_its_webhook(edge_stack, api, emulator):
    order = paid_order(edge_stack, api, emulator, "stripe")
    emulator.set_faults("stripe", refund_fail_rate=1.0)
    try:
        made = json_ok(refund(api, edge_stack, order["order_token"], amount="100.00"))
        [failed] = refunds_when(api, edge_stack, order["order_token"], lambda rs: rs[0]["status"] == "failed")
    finally:
        emulator.set_faults("stripe", refund_fail_rate=0.0)
    assert (failed["refund_id"], made["status"]) == (made["refund_id"], "pending")
    rest = json_ok(refund(api, edge_stack, order["order_token"]))
    assert rest["amount"] == "1768.82"  # the failed 100.00 is free again
    owner = edge_stack.bearer(order["user"])
    assert order_when(api, owner, order["order_token"], lambda o: o["status"] == "refunded")["refunded_amount"] == "1768.82"
