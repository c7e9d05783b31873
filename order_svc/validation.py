"""Checks of an order request, every problem listed at once (1000)."""

from __future__ import annotations

from common.validation import check_billing, check_text, check_uuid, raise_if_any
from order_svc.commands import GATEWAYS, PAYMENT_METHODS, OrderRequest
from order_svc.domain.invoices import gstin_is_valid
from order_svc.domain.return_urls import Origin, parse_origin, url_problem

MAX_BILLING_NAME = 100
# What order_svc allows without settings (tests of the rules alone): any local port.
LOCAL_ORIGINS = (parse_origin("http://localhost:*"), parse_origin("http://127.0.0.1:*"))


def check_url(problems: list[str], field: str, value: str, origins: tuple[Origin, ...]) -> None:
    if not value:
        return
    problem = url_problem(value, origins)
    if problem is not None:
        problems.append(f"{field}: {problem}")


def check_order_request(request: OrderRequest, return_origins: tuple[Origin, ...] = LOCAL_ORIGINS) -> None:
    problems: list[str] = []
    check_uuid(problems, "cart_token", request.cart_token)
    check_billing(problems, request.billing_country, request.billing_state)
    if request.billing_name:
        check_text(problems, "billing.name", request.billing_name, MAX_BILLING_NAME)
    if request.billing_gstin and not gstin_is_valid(request.billing_gstin.strip().upper()):
        problems.append("billing.gstin: a GSTIN of 15 characters with its check character, e.g. 29AAGCR4375J1ZU")
    if request.payment_method and request.payment_method not in PAYMENT_METHODS:
        problems.append(f"payment_method: one of {', '.join(PAYMENT_METHODS)}")
    if request.gateway and request.gateway not in GATEWAYS:
        problems.append(f"gateway: one of {', '.join(GATEWAYS)}")
    check_url(problems, "return_url", request.return_url, return_origins)
    check_url(problems, "cancel_url", request.cancel_url, return_origins)
    raise_if_any(problems)


def check_refund_id(problems: list[str], refund_id: str) -> None:
    if not refund_id or len(refund_id) > 64 or not refund_id.replace("-", "").replace("_", "").isalnum():
        problems.append("refund_id: the refund's id")


def check_order_token(order_token: str) -> None:
    problems: list[str] = []
    check_uuid(problems, "order_token", order_token)
    raise_if_any(problems)


def check_gateway(gateway: str) -> None:
    if gateway and gateway not in GATEWAYS:
        raise_if_any([f"gateway: one of {', '.join(GATEWAYS)}"])
