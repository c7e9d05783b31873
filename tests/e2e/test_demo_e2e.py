"""`make demo` (tools/demo.py) against a real stack: every step passes, from the catalog to the
enrollment, paying on the emulator's hosted page as a browser without JavaScript would. It broke
once unseen when the emulator's page stopped redirecting for Standard Checkout.

Run on both process layouts: one process per service, and SPLIT_WORKERS' (each service as a
SERVICE_ROLE=api process behind the edge and a SERVICE_ROLE=workers twin, to which the edge sends
the gateways' webhooks). Split, the enrollment can only come from the twins: the relays and the
consumers run nowhere else."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.e2e.stack import Stack, running_stack
from tools import demo

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module", params=["one process per service", "split workers"])
def demo_stack(request, module_launcher, settings, cart_engine, admin_engine, emulator) -> Iterator[Stack]:
    """`cart_engine` first: it loads the sample catalog (the demo's plan) into the session's database."""
    split = request.param == "split workers"
    env = {"RAZORPAY_BASE_URL": emulator.url, "STRIPE_BASE_URL": emulator.url, "PAYMENT_SWEEP_INTERVAL": "0",
           "LOG_LEVEL": "INFO"}
    with running_stack(module_launcher, settings, admin_engine, services=("cart", "order", "payment", "enrollment"),
                       env=env, split_workers=split) as stack:
        emulator.set_webhook_targets(razorpay=f"{stack.url}/api/v1/webhooks/razorpay", stripe=None)
        yield stack


def test_the_demo_runs_every_step_to_the_enrollment(demo_stack, capsys):
    status = demo.main(["--url", demo_stack.url, "--no-color", "--timeout", "60"])
    out = capsys.readouterr()

    assert status == 0, out.out + out.err
    for step in ("catalog", "coupon", "estimate", "order", "payment", "callback", "webhook", "enrollment"):
        assert f" {step} " in out.out, (step, out.out)
    assert "fulfilled; enrollment " in out.out and " active, " in out.out, out.out
    assert "done: one whole checkout" in out.out
    if demo_stack.workers:
        for service in demo_stack.services.values():  # behind the edge: no relay, consumer or sweeper ran
            [role] = [json.loads(line) for line in service.log.read_text().splitlines() if '"service role"' in line]
            assert role["role"] == "api" and set(role["workers"]) <= {"cart-catalog-listener"}, role
        assert "RazorpayWebhook" in demo_stack.workers["payment"].log.read_text()  # the webhook went to the twin
        assert "RazorpayWebhook" not in demo_stack.services["payment"].log.read_text()
