"""Wiring: the order service's servicer on a gRPC server (used by __main__ and by tests)."""

from __future__ import annotations

import grpc
from sqlalchemy.ext.asyncio import AsyncEngine

from checkout.v1 import order_pb2, order_pb2_grpc
from common.config import Settings
from common.server import Register
from order_svc.order_api import OrderApi
from order_svc.order_service import OrderService
from order_svc.payment_sessions_client import PaymentSessionsClient


def build_registration(engine: AsyncEngine, settings: Settings, sessions: PaymentSessionsClient | None = None) -> Register:
    def register(server: grpc.aio.Server) -> list[str]:
        client = sessions or PaymentSessionsClient(settings.payment_grpc_address)
        order_pb2_grpc.add_OrderServiceServicer_to_server(OrderApi(OrderService(engine, settings, client)), server)
        return [order_pb2.DESCRIPTOR.services_by_name["OrderService"].full_name]

    return register
