"""Wiring: the enrollment service's servicers on a gRPC server (used by __main__ and by tests).

Until its issue lands, every RPC is the generated base servicer's, which the interceptor answers
honestly with UNIMPLEMENTED (code 5001 in the envelope).
"""

from __future__ import annotations

import grpc
from sqlalchemy.ext.asyncio import AsyncEngine

from checkout.v1 import enrollment_pb2, enrollment_pb2_grpc
from common.config import Settings
from common.server import Register


def build_registration(engine: AsyncEngine, settings: Settings) -> Register:
    def register(server: grpc.aio.Server) -> list[str]:
        enrollment_pb2_grpc.add_EnrollmentServiceServicer_to_server(enrollment_pb2_grpc.EnrollmentServiceServicer(), server)
        return [enrollment_pb2.DESCRIPTOR.services_by_name["EnrollmentService"].full_name]

    return register
