"""`make demo` (tools/demo.py) against a real stack: every step passes, from the catalog to the
enrollment, paying on the emulator's hosted page as a browser without JavaScript would. It broke
once unseen when the emulator's page stopped redirecting for Standard Checkout."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.stack import Stack, running_stack
from tools import demo

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def demo_stack(module_launcher, settings, cart_engine, admin_engine, emulator) -> Iterator[Stack]:
    """`cart_engine` first: it loads the sample catalog (the demo's plan) into the session's database."""
    env = {"RAZORPAY_BASE_URL": emulator.url, "STRIPE_BASE_URL": emulator.url, "PAYMENT_SWEEP_INTERVAL": "0"}
    with running_stack(module_launcher, settings, admin_engine, services=("cart", "order", "payment", "enrollment"),
                       env=env) as stack:
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
