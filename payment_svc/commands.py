"""What order_svc asks of PaymentSessions.OpenSession, as checked plain values.

Everything payment_svc knows of an order arrives here: its owner, the amount to take and when the
order itself expires. Every problem is listed at once (1000), as the public services do.
"""

from __future__ import annotations

import dataclasses
import datetime
import urllib.parse
import uuid
from decimal import Decimal

from common.clock import parse_rfc3339
from common.money import SUPPORTED_CURRENCIES, parse_amount
from common.validation import check_text, check_uuid, raise_if_any
from payment_svc.domain.gateway_order import GATEWAYS
from payment_svc.domain.session_key import MAX_ATTEMPT

PAYMENT_METHODS = ("upi", "card", "netbanking", "wallet")
MAX_DESCRIPTION = 255
MAX_URL = 2048


@dataclasses.dataclass(frozen=True)
class OpenSessionCommand:
    order_token: str
    attempt: int
    amount: Decimal
    currency: str
    gateway: str  # preferred; the other is the fallback
    user_id: str  # the order's owner: the only one who may read or verify the payment
    order_expires_at: datetime.datetime  # the session never outlives it
    payment_method: str = ""
    return_url: str = ""
    cancel_url: str = ""
    description: str = ""


def open_session_command(*, order_token: str, attempt: int, amount: str, currency: str, gateway: str, user_id: str,
                         order_expires_at: str, payment_method: str = "", return_url: str = "", cancel_url: str = "",
                         description: str = "") -> OpenSessionCommand:
    problems: list[str] = []
    check_uuid(problems, "order_token", order_token)
    check_uuid(problems, "user_id", user_id)
    if not 1 <= attempt <= MAX_ATTEMPT:
        problems.append(f"attempt: between 1 and {MAX_ATTEMPT}")
    parsed = Decimal(0)
    try:
        parsed = parse_amount(amount)
    except ValueError as error:
        problems.append(f"amount: {error}")
    if currency not in SUPPORTED_CURRENCIES:
        problems.append(f"currency: one of {', '.join(SUPPORTED_CURRENCIES)}")
    if gateway and gateway not in GATEWAYS:
        problems.append(f"gateway: one of {', '.join(GATEWAYS)}")
    if payment_method and payment_method not in PAYMENT_METHODS:
        problems.append(f"payment_method: one of {', '.join(PAYMENT_METHODS)}")
    expires = _moment(problems, "order_expires_at", order_expires_at)
    _check_url(problems, "return_url", return_url)
    _check_url(problems, "cancel_url", cancel_url)
    check_text(problems, "description", description, MAX_DESCRIPTION)
    raise_if_any(problems)
    assert expires is not None
    return OpenSessionCommand(order_token=str(uuid.UUID(order_token)), attempt=attempt, amount=parsed,
                              currency=currency, gateway=gateway or "razorpay", user_id=str(uuid.UUID(user_id)),
                              order_expires_at=expires, payment_method=payment_method, return_url=return_url,
                              cancel_url=cancel_url, description=description)


def _moment(problems: list[str], field: str, value: str) -> datetime.datetime | None:
    if not value:
        problems.append(f"{field}: required (RFC 3339)")
        return None
    try:
        return parse_rfc3339(value)
    except ValueError:
        problems.append(f"{field}: an RFC 3339 timestamp with a time zone, e.g. 2026-12-02T10:00:00Z")
        return None


def _check_url(problems: list[str], field: str, value: str) -> None:
    """The gateway sends the browser there: an absolute http(s) URL (order_svc has already held it
    to the allowed origins)."""
    if not value:
        return
    parsed = urllib.parse.urlsplit(value)
    if len(value) > MAX_URL or parsed.scheme not in ("http", "https") or not parsed.netloc:
        problems.append(f"{field}: an absolute http(s) URL of at most {MAX_URL} characters")
