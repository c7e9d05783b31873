"""EnrollmentService over gRPC: the caller's enrollments; an admin's dead letters. Protobuf in,
a use case of service.py, protobuf out; the caller comes from the bearer (common/interceptors.py)."""

from __future__ import annotations

import grpc

from checkout.v1 import enrollment_pb2, enrollment_pb2_grpc
from common.clock import rfc3339
from common.dead_letters import DeadLetterRecord
from common.request_context import require_admin, require_user
from enrollment_svc.events import enrollment_message
from enrollment_svc.service import DeadLetterDesk, EnrollmentService


class EnrollmentApi(enrollment_pb2_grpc.EnrollmentServiceServicer):
    def __init__(self, enrollments: EnrollmentService, dead_letters: DeadLetterDesk) -> None:
        self._enrollments = enrollments
        self._dead_letters = dead_letters

    async def ListEnrollments(self, request: enrollment_pb2.ListEnrollmentsRequest,
                              context: grpc.aio.ServicerContext) -> enrollment_pb2.ListEnrollmentsResponse:
        caller = require_user()
        mine = await self._enrollments.enrollments_of(caller.user_id)
        return enrollment_pb2.ListEnrollmentsResponse(enrollments=[enrollment_message(e) for e in mine])

    async def ListDeadLetters(self, request: enrollment_pb2.ListDeadLettersRequest,
                              context: grpc.aio.ServicerContext) -> enrollment_pb2.ListDeadLettersResponse:
        require_admin()
        letters = await self._dead_letters.recent()
        return enrollment_pb2.ListDeadLettersResponse(dead_letters=[dead_letter_message(d) for d in letters])

    async def ReplayDeadLetter(self, request: enrollment_pb2.ReplayDeadLetterRequest,
                               context: grpc.aio.ServicerContext) -> enrollment_pb2.DeadLetter:
        admin = require_admin()
        return dead_letter_message(await self._dead_letters.replay(request.dead_letter_id, actor=admin.user_id))


def dead_letter_message(letter: DeadLetterRecord) -> enrollment_pb2.DeadLetter:
    return enrollment_pb2.DeadLetter(
        dead_letter_id=letter.dead_letter_id, subject=letter.subject,
        payload=bytes(letter.payload).decode("utf-8", errors="replace"), deliveries=letter.deliveries,
        error=letter.error, status=letter.status, created_at=rfc3339(letter.created_at),
    )
