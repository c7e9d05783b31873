"""order_svc's event consumers (common/consumer.py runs them; order_svc/progress.py decides):

- durable `order-payments` on checkout.payment.captured / failed / expired (PaymentEvent)
- durable `order-enrollments` on checkout.enrollment.created (EnrollmentsCreated)
- durable `order-refunds` on checkout.payment.refund_processed (RefundEvent)

A handler parses the payload, hands plain values to its use case and returns after that use
case committed; a payload that can never be applied (not the message, no valid order token) is
parked at once. A subject the durable does not name is acknowledged and ignored: a NATS server
before 2.10 ignores a consumer's `filter_subjects` and delivers the whole stream (the machine's
NATS in the tests is 2.9), and another service's event must neither be misread as ours nor parked.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.message import Message

from checkout.events.v1 import events_pb2
from common.consumed import CannotHandle, ConsumedEvent, Handler
from common.consumer import Subscription
from common.money import parse_amount
from order_svc.progress import OrderProgress, Outcome, PaymentOutcome, RefundProcessed

PAYMENTS_DURABLE = "order-payments"
ENROLLMENTS_DURABLE = "order-enrollments"
CAPTURED = "checkout.payment.captured"
FAILED = "checkout.payment.failed"
EXPIRED = "checkout.payment.expired"
ENROLLED = "checkout.enrollment.created"
REFUNDS_DURABLE = "order-refunds"
REFUND_PROCESSED = "checkout.payment.refund_processed"

M = TypeVar("M", bound=Message)


def parse(payload: Mapping[str, Any], message: M) -> M:
    try:
        return json_format.ParseDict(dict(payload), message, ignore_unknown_fields=True)
    except json_format.ParseError as error:
        raise CannotHandle(f"payload is not a {type(message).__name__}: {error}") from None


def require_uuid(value: str, field: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise CannotHandle(f"{field} is not a UUID: {value[:64]!r}") from None


def payment_outcome(event: events_pb2.PaymentEvent) -> PaymentOutcome:
    order_token = require_uuid(event.order_token, "order_token")
    payment_token = require_uuid(event.payment_token, "payment_token")
    try:
        amount = parse_amount(event.amount)
    except ValueError as error:
        raise CannotHandle(f"amount: {error}") from None
    if event.attempt < 1:
        raise CannotHandle(f"attempt must be 1 or more, not {event.attempt}")
    return PaymentOutcome(
        order_token=order_token, payment_token=payment_token, attempt=event.attempt, status=event.status, amount=amount, currency=event.currency, gateway=event.gateway,
        gateway_order_id=event.gateway_order_id, gateway_payment_id=event.gateway_payment_id, source=event.source,
        expires_at=event.expires_at, checkout_url=event.checkout_url)


def payment_handler(progress: OrderProgress) -> Handler:
    uses = {CAPTURED: progress.payment_captured, FAILED: progress.payment_failed, EXPIRED: progress.payment_expired}

    async def handle(event: ConsumedEvent) -> Outcome:
        use = uses.get(event.subject)
        if use is None:
            return "ignored"
        return await use(payment_outcome(parse(event.payload, events_pb2.PaymentEvent())))

    return handle


def enrollment_handler(progress: OrderProgress) -> Handler:
    async def handle(event: ConsumedEvent) -> Outcome:
        if event.subject != ENROLLED:
            return "ignored"
        created = parse(event.payload, events_pb2.EnrollmentsCreated())
        order_token = require_uuid(created.order_token, "order_token")
        ids = [require_uuid(enrollment.enrollment_id, "enrollment_id") for enrollment in created.enrollments]
        if not ids:
            raise CannotHandle(f"no enrollments for order {order_token}")
        return await progress.enrollments_created(order_token, ids)

    return handle


def refund_processed(event: events_pb2.RefundEvent) -> RefundProcessed:
    try:
        amount, refunded = parse_amount(event.amount), parse_amount(event.refunded_amount)
    except ValueError as error:
        raise CannotHandle(f"amount: {error}") from None
    return RefundProcessed(order_token=require_uuid(event.order_token, "order_token"),
                           refund_id=require_uuid(event.refund_id, "refund_id"), amount=amount, currency=event.currency,
                           refunded_amount=refunded, fully_refunded=event.fully_refunded, reason=event.reason)


def refund_handler(progress: OrderProgress) -> Handler:
    async def handle(event: ConsumedEvent) -> Outcome:
        if event.subject != REFUND_PROCESSED:
            return "ignored"
        return await progress.refund_processed(refund_processed(parse(event.payload, events_pb2.RefundEvent())))

    return handle


def subscriptions(progress: OrderProgress) -> list[Subscription]:
    return [
        Subscription(PAYMENTS_DURABLE, (CAPTURED, FAILED, EXPIRED), payment_handler(progress),
                     "order_svc: payments move orders (paid, payment_failed) and their payment view"),
        Subscription(ENROLLMENTS_DURABLE, (ENROLLED,), enrollment_handler(progress),
                     "order_svc: enrollments fulfil paid orders"),
        Subscription(REFUNDS_DURABLE, (REFUND_PROCESSED,), refund_handler(progress),
                     "order_svc: processed refunds (refunded_amount, credit notes, refunded)"),
    ]
