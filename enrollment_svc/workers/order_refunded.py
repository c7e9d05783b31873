"""The handler of `checkout.order.refunded` (durable consumer `enrollment-refunds`): a fully
refunded order's enrollments are cancelled (EnrollmentService.cancel_refunded_order, one
transaction, idempotent: a redelivery finds them cancelled and changes nothing). An event that is
not an OrderEvent or has no valid order token is parked at once (CannotHandle); a database failure,
or an order whose enrollments do not exist yet, is retried later (RetryLater)."""

from __future__ import annotations

import logging
import uuid

from google.protobuf import json_format
from sqlalchemy.exc import SQLAlchemyError

from checkout.events.v1 import events_pb2
from common.consumed import CannotHandle, ConsumedEvent, RetryLater
from enrollment_svc.events import ORDER_REFUNDED
from enrollment_svc.service import EnrollmentService

_log = logging.getLogger(__name__)


class OrderRefundedHandler:
    def __init__(self, service: EnrollmentService) -> None:
        self._service = service

    async def __call__(self, event: ConsumedEvent) -> str:
        if event.subject != ORDER_REFUNDED:
            raise CannotHandle(f"not a {ORDER_REFUNDED} event: {event.subject!r}")
        try:
            message = json_format.ParseDict(dict(event.payload), events_pb2.OrderEvent(), ignore_unknown_fields=True)
            order_token = str(uuid.UUID(message.order_token))
        except (json_format.ParseError, ValueError) as error:
            raise CannotHandle(f"not an OrderEvent with an order token: {error}") from None
        try:
            cancelled = await self._service.cancel_refunded_order(order_token, message.user_id,
                                                                  message.reason or "order refunded")
        except SQLAlchemyError as error:
            raise RetryLater(f"database: {type(error).__name__}: {error}") from error
        if cancelled:
            _log.info("enrollments cancelled", extra={"order_token": order_token,
                                                      "enrollment_ids": [e.enrollment_id for e in cancelled]})
            return "cancelled"
        return "duplicate"
