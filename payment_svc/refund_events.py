"""The refund events payment_svc publishes (docs/EVENTS.md "Subjects"), one RefundEvent per
refund that reaches a final status, written to the `payment` outbox in the transaction that
settles it. The aggregate id is the order token (the order's payment events keep their order).

    checkout.payment.refund_processed   the gateway paid the refund back (order_svc: refunded_amount,
                                        a credit note, `refunded` once fully refunded)
    checkout.payment.refund_failed      the gateway refused it or gave up; its amount is free again
"""

from __future__ import annotations

import datetime

from checkout.events.v1 import events_pb2
from common.clock import rfc3339
from common.money import format_amount
from common.uow import Recorder
from payment_svc.domain.refunds import is_fully_refunded
from payment_svc.refund_repository import RefundRecord, RefundTotals
from payment_svc.repository import PaymentRecord

REFUND_PROCESSED = "checkout.payment.refund_processed"
REFUND_FAILED = "checkout.payment.refund_failed"
SUBJECTS = {"processed": REFUND_PROCESSED, "failed": REFUND_FAILED}


def publish_refund_event(uow: Recorder, refund: RefundRecord, session: PaymentRecord, totals: RefundTotals,
                         now: datetime.datetime, *, source: str) -> None:
    """`refund` and `totals` as they are after the change; only for a final status."""
    uow.publish(SUBJECTS[refund.status], refund.order_token, events_pb2.RefundEvent(
        refund_id=refund.refund_id, order_token=refund.order_token, payment_token=refund.payment_token,
        user_id=session.user_id, gateway=refund.gateway, gateway_refund_id=refund.gateway_refund_id or "",
        status=refund.status, amount=format_amount(refund.amount), currency=refund.currency,
        captured_amount=format_amount(session.amount), refunded_amount=format_amount(totals.processed),
        fully_refunded=is_fully_refunded(session.amount, totals.processed),
        reason=(refund.failure_reason or refund.reason) if refund.status == "failed" else refund.reason,
        origin=refund.origin, source=source, occurred_at=rfc3339(now),
    ))
