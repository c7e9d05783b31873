"""What order_svc asks of PaymentSessions.OpenSession, as checked plain values."""

from __future__ import annotations

import dataclasses
import uuid
from decimal import Decimal

from cart_svc.validation import check_uuid, raise_if_any
from common.money import SUPPORTED_CURRENCIES, parse_amount
from order_svc.validation import check_url
from payment_svc.domain.gateway_order import GATEWAYS
from payment_svc.domain.session_key import MAX_ATTEMPT

MAX_DESCRIPTION = 255


@dataclasses.dataclass(frozen=True)
class OpenSessionCommand:
    order_token: str
    attempt: int
    amount: Decimal
    currency: str
    gateway: str  # preferred; the other is the fallback
    payment_method: str = ""
    return_url: str = ""
    cancel_url: str = ""
    user_id: str = ""
    description: str = ""


def open_session_command(*, order_token: str, attempt: int, amount: str, currency: str, gateway: str,
                         payment_method: str = "", return_url: str = "", cancel_url: str = "", user_id: str = "",
                         description: str = "") -> OpenSessionCommand:
    """Every problem at once (1000), as the public services do."""
    problems: list[str] = []
    check_uuid(problems, "order_token", order_token)
    check_uuid(problems, "user_id", user_id, required=False)
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
    check_url(problems, "return_url", return_url)
    check_url(problems, "cancel_url", cancel_url)
    if len(description) > MAX_DESCRIPTION:
        problems.append(f"description: at most {MAX_DESCRIPTION} characters")
    raise_if_any(problems)
    return OpenSessionCommand(order_token=str(uuid.UUID(order_token)), attempt=attempt, amount=parsed, currency=currency,
                              gateway=gateway or "razorpay", payment_method=payment_method, return_url=return_url,
                              cancel_url=cancel_url, user_id=str(uuid.UUID(user_id)) if user_id else "", description=description)
