"""Wiring: the order service's servicer on a gRPC server (used by __main__ and by tests)."""

from __future__ import annotations

import grpc
from sqlalchemy.ext.asyncio import AsyncEngine

from checkout.v1 import order_pb2, order_pb2_grpc
from cart_svc.cart_cache import CartCache, build_cart_cache
from common.config import Settings
from common.server import Register
from common.service_main import Assembly
from order_svc.order_api import OrderApi
from order_svc.order_service import OrderService
from order_svc.payment_sessions_client import PaymentSessionsClient


def build_registration(engine: AsyncEngine, settings: Settings, sessions: PaymentSessionsClient | None = None,
                       cart_cache: CartCache | None = None) -> Register:
    def register(server: grpc.aio.Server) -> list[str]:
        client = sessions or PaymentSessionsClient(settings.payment_grpc_address)
        service = OrderService(engine, settings, client, cart_cache=cart_cache)
        order_pb2_grpc.add_OrderServiceServicer_to_server(OrderApi(service), server)
        return [order_pb2.DESCRIPTOR.services_by_name["OrderService"].full_name]

    return register


def assemble(engine: AsyncEngine, settings: Settings) -> Assembly:
    """What `python -m order_svc` runs: the cart cache is told when an order converts a cart."""
    cart_cache = build_cart_cache(settings)
    sessions = PaymentSessionsClient(settings.payment_grpc_address)
    return Assembly(build_registration(engine, settings, sessions, cart_cache), [sessions.close, cart_cache.close])
