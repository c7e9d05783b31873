"""The events payment_svc publishes (docs/EVENTS.md "Subjects"): one PaymentEvent per change of a
session, written to the `payment` outbox in the transaction that makes the change. The aggregate
id is the order token, so the events of one order keep their order on the stream.

    checkout.payment.session_opened   a gateway order exists for an attempt (checkout_url, expires_at)
    checkout.payment.captured         the gateway took the session's amount (source: webhook, callback, reconcile)
    checkout.payment.failed           the attempt failed at the gateway (source as above)
    checkout.payment.expired          the session expired unpaid (source: sweeper)
    checkout.payment.flagged          money that does not match its session (reason): refund it
"""

from __future__ import annotations

import datetime

from checkout.events.v1 import events_pb2
from common.clock import rfc3339
from common.money import format_amount
from common.uow import Recorder
from payment_svc.repository import PaymentRecord

SESSION_OPENED = "checkout.payment.session_opened"
CAPTURED = "checkout.payment.captured"
FAILED = "checkout.payment.failed"
EXPIRED = "checkout.payment.expired"
FLAGGED = "checkout.payment.flagged"


def publish_payment_event(uow: Recorder, subject: str, session: PaymentRecord, now: datetime.datetime, *,
                          source: str = "", reason: str = "", gateway_payment_id: str | None = None) -> None:
    """`session` as it is after the change; `gateway_payment_id` when the news names another payment
    than the session's own (a flagged second capture)."""
    uow.publish(subject, session.order_token, events_pb2.PaymentEvent(
        payment_token=session.token, order_token=session.order_token, user_id=session.user_id,
        attempt=session.attempt, gateway=session.gateway, gateway_order_id=session.gateway_order_id or "",
        gateway_payment_id=(session.gateway_payment_id or "") if gateway_payment_id is None else gateway_payment_id,
        status=session.status, amount=format_amount(session.amount), currency=session.currency, source=source,
        reason=reason, expires_at=rfc3339(session.expires_at),
        checkout_url=(session.checkout_url or "") if subject == SESSION_OPENED else "",
        occurred_at=rfc3339(now),
    ))
