"""SPLIT_WORKERS: each service as a process answering calls (SERVICE_ROLE=api, no relay, consumer or
sweeper) and a twin running those (SERVICE_ROLE=workers), to which the edge sends the gateways'
webhooks. A whole checkout still reaches its enrollment, which only the twins can bring about:
the outbox relays and the consumers run nowhere else, and the webhook reached payment_svc's twin."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.e2e.stack import Stack, running_stack
from tools import demo

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def split_stack(module_launcher, settings, cart_engine, admin_engine, emulator) -> Iterator[Stack]:
    env = {"RAZORPAY_BASE_URL": emulator.url, "STRIPE_BASE_URL": emulator.url, "LOG_LEVEL": "INFO"}
    with running_stack(module_launcher, settings, admin_engine, services=("cart", "order", "payment", "enrollment"),
                       env=env, split_workers=True) as stack:
        emulator.set_webhook_targets(razorpay=f"{stack.url}/api/v1/webhooks/razorpay", stripe=None)
        yield stack


def test_a_checkout_reaches_its_enrollment_through_the_workers_processes(split_stack, capsys):
    status = demo.main(["--url", split_stack.url, "--no-color", "--timeout", "60"])
    out = capsys.readouterr()

    assert status == 0, out.out + out.err
    assert "fulfilled; enrollment " in out.out, out.out
    for service in split_stack.services.values():  # the processes behind the edge ran no relay, consumer, sweeper
        [role] = [json.loads(line) for line in service.log.read_text().splitlines() if '"service role"' in line]
        assert role["role"] == "api" and set(role["workers"]) <= {"cart-catalog-listener"}, role
    webhook_calls = [json.loads(line) for line in _twin_log(split_stack, "payment_svc").splitlines()
                     if "RazorpayWebhook" in line and '"msg": "rpc"' in line]
    assert webhook_calls, "payment_svc's workers process answered no webhook"
    assert "RazorpayWebhook" not in split_stack.services["payment"].log.read_text()


def _twin_log(stack: Stack, module: str) -> str:
    return "".join(path.read_text() for path in stack.launcher.workdir.glob(f"{module}-*.log")
                   if path != stack.services[module.removesuffix("_svc")].log)
