"""One checkout is one trace (issue 12, item 1), through the real edge and the four real service
processes, with the gateway emulator paying and sending its webhook to the edge.

The edge's spans reach a local OTLP receiver (devstack/trace_receiver.py, on a thread here), the
services write theirs to the stack's trace directory (common/trace_store.py); the test reads them
as `make traces` does and checks the tree: one trace id (the one in x-trace-id), one root (the
edge's span of POST /api/v1/order), every other span's parent in the trace; order_svc's
CreateOrder under the edge, cart_svc's ConvertCart and payment_svc's OpenSession (with its gateway
call) under it; the
capture recorded in the checkout's trace (under OpenSession's unit of work) and linked to the
webhook's own trace (the edge's span of POST /api/v1/webhooks/razorpay → RazorpayWebhook); the
events and their consumers below it: payment.captured → order_svc, order.paid → enrollment_svc
(whose unit of work inserts the enrollment), enrollment.created → order_svc.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from common.trace_store import StoredSpan, read_spans, traces
from devstack.trace_receiver import start_in_thread
from edge.settings import Collector
from gateway_emulator import RunningEmulator, start_emulator
from tests.e2e.stack import Stack, json_ok, order_when, running_stack

pytestmark = pytest.mark.timeout(240)

PLAN = "7a1e0000-0000-4000-8000-000000000101"  # 1499.00 INR in the sample catalog
TRACE_ID = re.compile(r"^[0-9a-f]{32}$")


@pytest.fixture(scope="module")
def trace_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(tmp_path_factory.mktemp("traces"))


@pytest.fixture(scope="module")
def receiver(trace_dir: str) -> Iterator[int]:
    server = start_in_thread(trace_dir)
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def emulator() -> Iterator[RunningEmulator]:
    running = start_emulator(port=0, webhook_razorpay_url=None, webhook_stripe_url=None,
                             webhook_retry_delays=(0.2, 0.5, 1.0, 2.0))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def traced_stack(module_launcher, settings, cart_engine, admin_engine, emulator, trace_dir, receiver) -> Iterator[Stack]:
    """`cart_engine` first: it loads the sample catalog into the session's database."""
    env = {"RAZORPAY_BASE_URL": emulator.url, "STRIPE_BASE_URL": emulator.url, "PAYMENT_SWEEP_INTERVAL": "0",
           "TRACING": "1", "TRACING_SAMPLE_RATIO": "1", "TRACING_DIR": trace_dir,
           "OTEL_BSP_SCHEDULE_DELAY": "100"}  # the SDK's batch delay (ms): spans reach the files soon
    with running_stack(module_launcher, settings, admin_engine, services=("cart", "order", "payment", "enrollment"),
                       env=env, trace_collector=Collector("127.0.0.1", receiver)) as stack:
        emulator.set_webhook_targets(razorpay=f"{stack.url}/api/v1/webhooks/razorpay", stripe=None)
        yield stack


class Tree:
    def __init__(self, spans: list[StoredSpan]) -> None:
        self.spans = spans
        self.by_id = {span.span_id: span for span in spans}

    def find(self, service: str, name: str) -> list[StoredSpan]:
        return [span for span in self.spans if span.service == service and span.name == name]

    def one(self, service: str, name: str) -> StoredSpan:
        found = self.find(service, name)
        assert len(found) == 1, (service, name, [(s.service, s.name) for s in self.spans])
        return found[0]

    def ancestors(self, span: StoredSpan) -> list[StoredSpan]:
        chain = []
        while span.parent_id in self.by_id:
            span = self.by_id[span.parent_id]
            chain.append(span)
        return chain

    def under(self, child: StoredSpan, ancestor: StoredSpan) -> bool:
        return ancestor in self.ancestors(child)


def wait_for_trace(trace_dir: str, trace_id: str, complete: Callable[[Tree], bool], timeout: float = 30.0) -> Tree:
    """The trace as the store holds it once `complete(tree)`: spans reach the files in batches."""
    deadline = time.monotonic() + timeout
    while True:
        tree = Tree(traces(read_spans(trace_dir)).get(trace_id, []))
        if complete(tree):
            return tree
        if time.monotonic() > deadline:
            names = sorted(f"{span.service}:{span.name}" for span in tree.spans)
            raise AssertionError(f"trace {trace_id} incomplete after {timeout}s: {names}")
        time.sleep(0.2)


def edge_span(tree: Tree, path: str) -> list[StoredSpan]:
    return [span for span in tree.spans if span.service == "edge" and str(span.attributes.get("http.url", "")).endswith(path)]


def test_one_checkout_is_one_trace_from_the_order_to_the_enrollment(traced_stack, emulator, trace_dir):
    stack = traced_stack
    user = stack.bearer(None)
    with stack.client() as api:
        cart = json_ok(api.post("/api-proxy/api/cart", json={"items": [{"plan_id": PLAN, "quantity": 1}]}, headers=user))
        placed = api.post("/api/v1/order", json={"cart_token": cart["token"], "gateway": "razorpay"},
                          headers={**user, "Idempotency-Key": str(uuid.uuid4())})
        order = json_ok(placed)
        trace_id = placed.headers.get("x-trace-id", "")
        assert TRACE_ID.match(trace_id), placed.headers
        assert trace_id != "0" * 32

        emulator.pay(order["payment"]["gateway_order_id"])
        order_when(api, user, order["order_token"], lambda current: current["status"] == "fulfilled")

    def complete(tree: Tree) -> bool:
        # every process has exported what it did: no span waits for a parent still queued elsewhere
        orphans = [span for span in tree.spans if span.parent_id and span.parent_id not in tree.by_id]
        return (not orphans and bool(edge_span(tree, "/api/v1/order"))
                and bool(tree.find("order_svc", "consume checkout.enrollment.created"))
                and bool(tree.find("enrollment_svc", "consume checkout.order.paid"))
                and bool(tree.find("payment_svc", "checkout.internal.v1.PaymentSessions/OpenSession")))

    tree = wait_for_trace(trace_dir, trace_id, complete)

    # one trace, one root: the edge's span of the request; every other span's parent is in the trace
    roots = [span for span in tree.spans if span.parent_id not in tree.by_id]
    assert [(span.service, span.parent_id) for span in roots] == [("edge", "")], roots
    (root,) = roots
    assert edge_span(tree, "/api/v1/order") == [root]
    assert {span.trace_id for span in tree.spans} == {trace_id}

    # edge → order_svc → cart_svc and payment_svc (internal calls: CLIENT span → the callee's SERVER span)
    create = tree.one("order_svc", "checkout.v1.OrderService/CreateOrder")
    assert create.parent_id == root.span_id and create.kind == "server"
    convert = tree.one("cart_svc", "checkout.internal.v1.CartCheckout/ConvertCart")
    open_session = tree.one("payment_svc", "checkout.internal.v1.PaymentSessions/OpenSession")
    for server in (convert, open_session):
        client = tree.by_id[server.parent_id]
        assert (client.service, client.kind, client.name) == ("order_svc", "client", server.name)
        assert tree.under(client, create)
    assert [s for s in tree.spans if s.service == "payment_svc" and s.name == "db.payment" and tree.under(s, open_session)]
    gateway = tree.one("payment_svc", "gateway.razorpay.create_order")  # the call to the emulator
    assert gateway.kind == "client" and tree.under(gateway, open_session)

    # the webhook is a trace of its own (the gateway's request); the capture is recorded in the
    # checkout's trace, under the unit of work that stored the session, linked to the webhook's span
    captured = tree.one("payment_svc", "payment.captured")
    assert tree.under(captured, open_session)
    assert tree.by_id[captured.parent_id].name == "db.payment"
    (link_trace, link_span), = captured.links
    assert link_trace != trace_id
    webhook = wait_for_trace(trace_dir, link_trace, lambda t: bool(edge_span(t, "/api/v1/webhooks/razorpay"))
                             and link_span in t.by_id)
    hook = webhook.by_id[link_span]
    assert hook.service == "payment_svc" and (hook.name == "db.payment" or hook.name.endswith("/RazorpayWebhook"))
    hook_server = next(s for s in [hook, *webhook.ancestors(hook)] if s.name.endswith("PaymentService/RazorpayWebhook"))
    assert webhook.by_id[hook_server.parent_id] in edge_span(webhook, "/api/v1/webhooks/razorpay")

    # NATS: the relay's PRODUCER span under the span the event was recorded in, the consumer under it
    def hop(subject: str, producer: str, consumer: str, above: StoredSpan) -> StoredSpan:
        published = [s for s in tree.find(producer, f"publish {subject}") if tree.under(s, above)]
        assert len(published) == 1, (subject, [(s.service, s.name) for s in tree.spans])
        consumed = [s for s in tree.find(consumer, f"consume {subject}") if s.parent_id == published[0].span_id]
        assert consumed and consumed[0].kind == "consumer", subject
        return consumed[0]

    paid = hop("checkout.payment.captured", "payment_svc", "order_svc", captured)
    enrolling = hop("checkout.order.paid", "order_svc", "enrollment_svc", paid)
    assert [s for s in tree.spans if s.service == "enrollment_svc" and s.name == "db.enrollment"
            and tree.under(s, enrolling)], "the enrollment's unit of work is in the checkout's trace"
    hop("checkout.enrollment.created", "enrollment_svc", "order_svc", enrolling)

    # timings: every child inside its trace, no span ending before it starts
    assert all(span.end_ns >= span.start_ns > 0 for span in tree.spans)


def test_every_answer_has_a_trace_id_and_a_client_trace_is_continued(traced_stack, trace_dir):
    with traced_stack.client() as api:
        for response in (api.get("/api/v1/internships"), api.get("/api/v1/no-such-route"),
                         api.post("/api/v1/order", content=b"{not json", headers={"Content-Type": "application/json"}),
                         api.get("/healthz"), api.get("/readyz")):
            assert TRACE_ID.match(response.headers.get("x-trace-id", "")), (response.request.url, response.headers)
        mine = uuid.uuid4().hex
        continued = api.get("/api/v1/internships", headers={"traceparent": f"00-{mine}-{'ab' * 8}-01",
                                                            "Origin": "http://localhost:3000"})
        assert continued.status_code == 200 and continued.headers["x-trace-id"] == mine
        assert "x-trace-id" in continued.headers["access-control-expose-headers"]  # a browser may read it

    tree = wait_for_trace(trace_dir, mine, lambda t: bool(t.find("cart_svc", "checkout.v1.CatalogService/ListInternships"))
                          and bool(edge_span(t, "/api/v1/internships")))
    (edge,) = edge_span(tree, "/api/v1/internships")
    assert edge.parent_id == "ab" * 8  # the client's span, which the store does not have
    listing = tree.one("cart_svc", "checkout.v1.CatalogService/ListInternships")
    assert listing.parent_id == edge.span_id
