"""The events enrollment_svc reads and writes (docs/EVENTS.md), and its Enrollment message."""

from __future__ import annotations

import datetime
from collections.abc import Sequence

from checkout.events.v1 import events_pb2
from checkout.v1 import enrollment_pb2
from common.clock import rfc3339
from enrollment_svc.domain.paid_order import Enrollment, PaidOrder

ORDER_PAID = "checkout.order.paid"  # consumed (producer: order_svc)
ORDER_REFUNDED = "checkout.order.refunded"  # consumed (producer: order_svc)
ENROLLMENT_CREATED = "checkout.enrollment.created"  # produced (consumer: order_svc)
ENROLLMENT_CANCELLED = "checkout.enrollment.cancelled"  # produced (no consumer yet)


def enrollment_message(enrollment: Enrollment) -> enrollment_pb2.Enrollment:
    return enrollment_pb2.Enrollment(
        enrollment_id=enrollment.enrollment_id, order_token=enrollment.order_token,
        internship_id=enrollment.internship_id, plan_id=enrollment.plan_id, user_id=enrollment.user_id,
        status=enrollment.status, starts_at=rfc3339(enrollment.starts_at), ends_at=rfc3339(enrollment.ends_at),
    )


def enrollments_cancelled(order_token: str, user_id: str, cancelled: Sequence[Enrollment], reason: str,
                          now: datetime.datetime) -> events_pb2.EnrollmentsCancelled:
    return events_pb2.EnrollmentsCancelled(order_token=order_token, user_id=user_id,
                                           enrollments=[enrollment_message(e) for e in cancelled], reason=reason,
                                           occurred_at=rfc3339(now))


def enrollments_created(order: PaidOrder, created: Sequence[Enrollment],
                        now: datetime.datetime) -> events_pb2.EnrollmentsCreated:
    return events_pb2.EnrollmentsCreated(order_token=order.order_token, user_id=order.user_id,
                                         enrollments=[enrollment_message(e) for e in created],
                                         occurred_at=rfc3339(now))
