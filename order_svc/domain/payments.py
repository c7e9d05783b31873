"""What a payment event does to an order, decided without I/O (order_svc/progress.py applies it).

Attempts are numbered 1, 2, … per order; the order keeps the latest attempt it knows of
(`payment_attempt`) and that attempt's session view. An event of an older attempt never
replaces a newer attempt's view.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from order_svc.domain.order_status import MAY_BE_PAID

CaptureVerdict = Literal["pay", "duplicate", "flag"]


def capture_verdict(status: str, paid_by: str | None, payment_token: str, amount: Decimal, currency: str,
                    order_total: Decimal, order_currency: str) -> tuple[CaptureVerdict, str]:
    """(verdict, reason). A capture pays an order that may still be paid, for exactly its total;
    the same capture again is a duplicate; money for an order that can no longer take it (expired,
    cancelled, already paid by another payment) or of another amount is flagged for a refund."""
    if status in ("paid", "fulfilled"):
        if paid_by == payment_token:
            return "duplicate", ""
        return "flag", f"the order was already paid by payment {paid_by}"
    if status not in MAY_BE_PAID:
        return "flag", f"the order is {status}: it can no longer be paid"
    if amount != order_total or currency != order_currency:
        return "flag", f"captured {amount} {currency} for an order of {order_total} {order_currency}"
    return "pay", ""


def is_current_attempt(known_attempt: int, event_attempt: int) -> bool:
    """The event concerns the latest attempt the order knows of, or a newer one."""
    return event_attempt >= known_attempt


def failure_moves_order(status: str, known_attempt: int, event_attempt: int) -> bool:
    """A failed attempt makes the order payment_failed only if it is the latest attempt and the
    order is still waiting for that payment."""
    return is_current_attempt(known_attempt, event_attempt) and status in ("pending", "awaiting_payment")
