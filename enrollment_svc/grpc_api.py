"""EnrollmentService servicer: caller check → query or use case → response message."""

from __future__ import annotations

import grpc
from sqlalchemy.ext.asyncio import AsyncEngine

from checkout.v1 import enrollment_pb2, enrollment_pb2_grpc
from common.clock import rfc3339
from common.request_context import require_admin, require_user
from enrollment_svc import dead_letters, repository

Context = grpc.aio.ServicerContext


class EnrollmentApi(enrollment_pb2_grpc.EnrollmentServiceServicer):
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def ListEnrollments(self, request: enrollment_pb2.ListEnrollmentsRequest,
                              context: Context) -> enrollment_pb2.ListEnrollmentsResponse:
        caller = require_user()
        async with self._engine.connect() as conn:
            records = await repository.enrollments_of_user(conn, caller.user_id)
        return enrollment_pb2.ListEnrollmentsResponse(enrollments=[enrollment_message(r) for r in records])

    async def ListDeadLetters(self, request: enrollment_pb2.ListDeadLettersRequest,
                              context: Context) -> enrollment_pb2.ListDeadLettersResponse:
        require_admin()
        async with self._engine.connect() as conn:
            records = await repository.list_dead_letters(conn)
        return enrollment_pb2.ListDeadLettersResponse(dead_letters=[dead_letter_message(r) for r in records])

    async def ReplayDeadLetter(self, request: enrollment_pb2.ReplayDeadLetterRequest,
                               context: Context) -> enrollment_pb2.DeadLetter:
        admin = require_admin()
        record = await dead_letters.replay(self._engine, request.dead_letter_id, actor=admin.user_id)
        return dead_letter_message(record)


def enrollment_message(record: repository.EnrollmentRecord) -> enrollment_pb2.Enrollment:
    return enrollment_pb2.Enrollment(
        enrollment_id=record.enrollment_id, order_token=record.order_token, internship_id=record.internship_id,
        plan_id=record.plan_id, user_id=record.user_id, status=record.status,
        starts_at=rfc3339(record.starts_at), ends_at=rfc3339(record.ends_at),
    )


def dead_letter_message(record: repository.DeadLetterRecord) -> enrollment_pb2.DeadLetter:
    return enrollment_pb2.DeadLetter(
        dead_letter_id=record.dead_letter_id, subject=record.subject,
        payload=bytes(record.payload).decode("utf-8", errors="replace"), deliveries=record.deliveries,
        error=record.error, status=record.status, created_at=rfc3339(record.created_at),
    )
