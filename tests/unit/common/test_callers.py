"""The caller table (common/callers.py): every service of proto/ has its line, and each RPC is open
to exactly the callers the issue names."""

from __future__ import annotations

import pathlib
import re

import pytest

from common.callers import CALLERS, may_call

ROOT = pathlib.Path(__file__).resolve().parents[3]
EVERYONE = ("cart_svc", "order_svc", "payment_svc", "enrollment_svc", "edge", "developer")


def proto_services() -> set[str]:
    found = set()
    for path in (ROOT / "proto").rglob("*.proto"):
        text = path.read_text()
        package = re.search(r"^package\s+([\w.]+);", text, re.M)
        for name in re.findall(r"^service\s+(\w+)", text, re.M):
            assert package is not None, path
            found.add(f"{package.group(1)}.{name}")
    return found


def test_every_service_in_proto_has_a_line_in_the_table() -> None:
    services = proto_services()
    assert "checkout.internal.v1.PaymentSessions" in services
    assert services - set(CALLERS) == set()


def _who(method: str) -> set[str]:
    return {identity for identity in EVERYONE if may_call(f"spiffe://interns/{identity}", method)}


@pytest.mark.parametrize(("method", "callers"), [
    ("/checkout.internal.v1.PaymentSessions/OpenSession", {"order_svc"}),
    ("/checkout.internal.v1.CartCheckout/ConvertCart", {"order_svc"}),
    ("/checkout.internal.v1.CartCheckout/ReleaseCart", {"order_svc"}),
    ("/checkout.v1.PaymentService/RazorpayWebhook", {"edge"}),
    ("/checkout.v1.PaymentService/StripeWebhook", {"edge"}),
    ("/checkout.v1.PaymentService/GetPayment", {"edge", "developer"}),
    ("/checkout.v1.CartService/CreateCart", {"edge", "developer"}),
    ("/checkout.v1.OrderService/CreateOrder", {"edge", "developer"}),
    ("/checkout.v1.AdminService/CreateCoupon", {"edge"}),
    ("/checkout.v1.RefundService/CreateRefund", {"edge"}),
    ("/checkout.v1.EnrollmentService/ReplayDeadLetter", {"edge"}),
    ("/checkout.v1.EnrollmentService/ListEnrollments", {"edge", "developer"}),
    ("/grpc.health.v1.Health/Check", set(EVERYONE)),
    ("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", set(EVERYONE)),
    ("/checkout.v1.NotInTheTable/Anything", set()),
])
def test_each_rpc_is_open_to_its_callers_only(method: str, callers: set[str]) -> None:
    assert _who(method) == callers


def test_another_trust_domain_or_no_identity_is_nobody() -> None:
    assert not may_call("spiffe://elsewhere/order_svc", "/checkout.internal.v1.PaymentSessions/OpenSession")
    assert not may_call("", "/checkout.v1.CartService/GetCart")
    assert may_call("spiffe://elsewhere/x", "/grpc.health.v1.Health/Check")  # any certificate of our CA
