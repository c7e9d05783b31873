"""Checks of an order request, every problem listed at once (1000)."""

from __future__ import annotations

import urllib.parse

from common.validation import check_billing, check_uuid, raise_if_any
from order_svc.commands import GATEWAYS, PAYMENT_METHODS, OrderRequest

MAX_URL = 2048


def check_url(problems: list[str], field: str, value: str) -> None:
    if not value:
        return
    parsed = urllib.parse.urlsplit(value)
    if len(value) > MAX_URL or parsed.scheme not in ("http", "https") or not parsed.netloc:
        problems.append(f"{field}: an absolute http(s) URL of at most {MAX_URL} characters")


def check_order_request(request: OrderRequest) -> None:
    problems: list[str] = []
    check_uuid(problems, "cart_token", request.cart_token)
    check_billing(problems, request.billing_country, request.billing_state)
    if request.payment_method and request.payment_method not in PAYMENT_METHODS:
        problems.append(f"payment_method: one of {', '.join(PAYMENT_METHODS)}")
    if request.gateway and request.gateway not in GATEWAYS:
        problems.append(f"gateway: one of {', '.join(GATEWAYS)}")
    check_url(problems, "return_url", request.return_url)
    check_url(problems, "cancel_url", request.cancel_url)
    raise_if_any(problems)


def check_order_token(order_token: str) -> None:
    problems: list[str] = []
    check_uuid(problems, "order_token", order_token)
    raise_if_any(problems)


def check_gateway(gateway: str) -> None:
    if gateway and gateway not in GATEWAYS:
        raise_if_any([f"gateway: one of {', '.join(GATEWAYS)}"])
