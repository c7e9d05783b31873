"""What a gateway's word about a payment does to our session and order, decided without I/O.

`judge_payment` compares what the gateway reports with what we know of the session; the order
rules then say which order transitions follow. payment_svc/outcomes.py applies the verdicts
under row locks; the webhook handlers and the browser callback share it.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Literal

from payment_svc.domain.payment_status import can_move

ReportedStatus = Literal["captured", "failed", "pending"]


@dataclasses.dataclass(frozen=True)
class SessionFacts:
    status: str
    amount_minor: int
    currency: str
    gateway_payment_id: str | None


@dataclasses.dataclass(frozen=True)
class Reported:
    status: ReportedStatus
    gateway_payment_id: str
    amount_minor: int
    currency: str


class PaymentVerdict(enum.Enum):
    CAPTURE = "capture"  # the session becomes captured; the order may be paid
    FAIL = "fail"  # the session becomes failed
    DUPLICATE = "duplicate"  # we already know exactly this: nothing changes
    IGNORE = "ignore"  # older or weaker news than ours (a failure after a capture, a pending): nothing changes
    AMOUNT_MISMATCH = "amount_mismatch"  # captured, but not the session's amount or currency: never fulfilled
    SECOND_CAPTURE = "second_capture"  # another captured payment of a captured session: money to give back


def judge_payment(session: SessionFacts, reported: Reported) -> PaymentVerdict:
    if reported.status == "captured":
        if session.status == "captured":
            same = session.gateway_payment_id == reported.gateway_payment_id
            return PaymentVerdict.DUPLICATE if same else PaymentVerdict.SECOND_CAPTURE
        if (reported.amount_minor, reported.currency.upper()) != (session.amount_minor, session.currency.upper()):
            return PaymentVerdict.AMOUNT_MISMATCH
        return PaymentVerdict.CAPTURE if can_move(session.status, "captured") else PaymentVerdict.IGNORE
    if reported.status == "failed":
        if session.status == "failed" and session.gateway_payment_id == reported.gateway_payment_id:
            return PaymentVerdict.DUPLICATE
        return PaymentVerdict.FAIL if can_move(session.status, "failed") else PaymentVerdict.IGNORE
    return PaymentVerdict.IGNORE


def order_path_to_paid(order_status: str) -> tuple[str, ...] | None:
    """The transitions that take an order to paid, or None when it can no longer be paid.

    The state machine has no pending → paid: an order whose capture overtook order_svc's own
    move to awaiting_payment goes through awaiting_payment first, both steps audited."""
    if order_status == "pending":
        return ("awaiting_payment", "paid")
    if order_status in ("awaiting_payment", "payment_failed"):
        return ("paid",)
    return None


def order_path_after_failure(order_status: str, *, latest_attempt: bool) -> tuple[str, ...]:
    """A failed payment fails the order only if it is the order's current attempt and the order
    still waits for money; a stale failure of an older attempt changes nothing."""
    if latest_attempt and order_status in ("pending", "awaiting_payment"):
        return ("payment_failed",)
    return ()


def why_unpayable(order_status: str) -> str:
    if order_status in ("paid", "fulfilled"):
        return "the order was already paid by another payment: refund this one"
    return f"the order is {order_status}: refund this payment or reinstate the order by hand"
