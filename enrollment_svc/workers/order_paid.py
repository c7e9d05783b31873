"""The handler of `checkout.order.paid` (durable consumer `enrollment-orders`): the paid order's
lines become enrollments (EnrollmentService.enroll_paid_order, one transaction).

common/consumer.py acks after the handler returns, i.e. after the commit; a crash in between
redelivers the event, which then finds the order's enrollments and changes nothing. An event that
can never be enrolled (not an OrderEvent, no lines, a bad period, ids that are not UUIDs) is
CannotHandle: parked at once. A database failure is RetryLater: nak'ed with a delay, parked after
the last delivery, replayable (common/dead_letters.py) once the database is fixed.
"""

from __future__ import annotations

import dataclasses
import logging

from google.protobuf import json_format
from prometheus_client import Counter
from sqlalchemy.exc import SQLAlchemyError

from checkout.events.v1 import events_pb2
from common.clock import parse_rfc3339, utc_now
from common.consumed import CannotHandle, ConsumedEvent, RetryLater
from enrollment_svc.domain.paid_order import InvalidPaidOrder, PaidLine, PaidOrder, paid_order
from enrollment_svc.events import ORDER_PAID
from enrollment_svc.metrics import ENROLLMENT_LAG
from enrollment_svc.service import Enrolled, EnrollmentService

PAID_ORDERS = Counter("checkout_enrollment_orders_total", "checkout.order.paid events handled, by outcome: "
                      "enrolled (this delivery created the enrollments) or already_enrolled", ["outcome"])

_log = logging.getLogger(__name__)


@dataclasses.dataclass
class HandlerStats:
    enrolled: int = 0
    already_enrolled: int = 0


def read_paid_order(event: ConsumedEvent) -> PaidOrder:
    """CannotHandle for anything but a paid OrderEvent with enrollable lines."""
    if event.subject != ORDER_PAID:
        raise CannotHandle(f"not a {ORDER_PAID} event: {event.subject!r}")
    try:
        message = json_format.ParseDict(dict(event.payload), events_pb2.OrderEvent(), ignore_unknown_fields=True)
    except json_format.ParseError as error:
        raise CannotHandle(f"not an OrderEvent: {error}") from None
    lines = [PaidLine(line_no=line.line_no, internship_id=line.internship_id, plan_id=line.plan_id,
                      period_value=line.period.value, period_unit=line.period.unit) for line in message.lines]
    try:
        return paid_order(message.order_token, message.user_id, message.payment_token, lines)
    except InvalidPaidOrder as error:
        raise CannotHandle(str(error)) from None


class OrderPaidHandler:
    def __init__(self, service: EnrollmentService) -> None:
        self._service = service
        self.stats = HandlerStats()

    async def __call__(self, event: ConsumedEvent) -> Enrolled:
        order = read_paid_order(event)
        try:
            enrolled = await self._service.enroll_paid_order(order)
        except SQLAlchemyError as error:
            _log.warning("enrolling a paid order failed in the database; it will be retried",
                         extra={"order_token": order.order_token, "error": repr(error)})
            raise RetryLater(f"database: {type(error).__name__}: {error}") from error
        if enrolled.created:
            self.stats.enrolled += 1
            PAID_ORDERS.labels("enrolled").inc()
            _observe_lag(event)
            _log.info("enrolled", extra={"order_token": order.order_token,
                                         "enrollment_ids": [e.enrollment_id for e in enrolled.enrollments]})
        else:
            self.stats.already_enrolled += 1
            PAID_ORDERS.labels("already_enrolled").inc()
        return enrolled


def _observe_lag(event: ConsumedEvent) -> None:
    try:
        paid_at = parse_rfc3339(str(event.payload.get("occurred_at") or ""))
    except ValueError:
        return  # an event without its time still enrolls; it just is not measured
    ENROLLMENT_LAG.observe(max(0.0, (utc_now() - paid_at).total_seconds()))
