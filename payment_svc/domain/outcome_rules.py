"""What a gateway's word about a payment does to our session, decided without I/O.

`judge_payment` compares what the gateway reports with what we know of the session.
payment_svc/outcomes.py applies the verdict under the session's row lock; the webhook handlers,
the browser callback and the reconciler share it. What a capture or a failure means for the
order is order_svc's to decide (it consumes checkout.payment.captured / failed).
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
    CAPTURE = "capture"  # the session becomes captured (order_svc decides whether that pays the order)
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
