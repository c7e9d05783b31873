"""Wiring: the payment service's servicers on a gRPC server (used by __main__ and by tests).

Until its issue lands, every RPC is the generated base servicer's, which the interceptor answers
honestly with UNIMPLEMENTED (code 5001 in the envelope).
"""

from __future__ import annotations

import grpc
from sqlalchemy.ext.asyncio import AsyncEngine

from checkout.v1 import payment_pb2, payment_pb2_grpc
from common.config import Settings
from common.server import Register


def build_registration(engine: AsyncEngine, settings: Settings) -> Register:
    def register(server: grpc.aio.Server) -> list[str]:
        payment_pb2_grpc.add_PaymentServiceServicer_to_server(payment_pb2_grpc.PaymentServiceServicer(), server)
        return [payment_pb2.DESCRIPTOR.services_by_name["PaymentService"].full_name]

    return register
