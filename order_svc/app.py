"""Wiring: the order service's servicers on a gRPC server (used by __main__ and by tests).

Until its issue lands, every RPC is the generated base servicer's, which the interceptor answers
honestly with UNIMPLEMENTED (code 5001 in the envelope).
"""

from __future__ import annotations

import grpc
from sqlalchemy.ext.asyncio import AsyncEngine

from checkout.v1 import order_pb2, order_pb2_grpc
from common.config import Settings
from common.server import Register


def build_registration(engine: AsyncEngine, settings: Settings) -> Register:
    def register(server: grpc.aio.Server) -> list[str]:
        order_pb2_grpc.add_OrderServiceServicer_to_server(order_pb2_grpc.OrderServiceServicer(), server)
        return [order_pb2.DESCRIPTOR.services_by_name["OrderService"].full_name]

    return register
