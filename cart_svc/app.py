"""Wiring: the cart service's servicers on a gRPC server (used by __main__ and by tests)."""

from __future__ import annotations

import grpc
from sqlalchemy.ext.asyncio import AsyncEngine

from cart_svc.admin_api import AdminApi
from cart_svc.admin_service import AdminService
from cart_svc.cart_api import CartApi
from cart_svc.cart_cache import CachedCartApi, CartCache
from cart_svc.cart_service import CartService
from cart_svc.catalog_api import CatalogApi
from checkout.v1 import admin_pb2, admin_pb2_grpc, cart_pb2, cart_pb2_grpc, catalog_pb2, catalog_pb2_grpc
from common.config import Settings
from common.server import Register


def build_registration(engine: AsyncEngine, settings: Settings, cache: CartCache | None = None) -> Register:
    def register(server: grpc.aio.Server) -> list[str]:
        catalog_pb2_grpc.add_CatalogServiceServicer_to_server(CatalogApi(engine), server)
        service = CartService(engine, settings, cache=cache)
        cart_api = CartApi(service) if cache is None else CachedCartApi(service, cache)
        cart_pb2_grpc.add_CartServiceServicer_to_server(cart_api, server)
        admin_pb2_grpc.add_AdminServiceServicer_to_server(AdminApi(AdminService(engine)), server)
        return [
            catalog_pb2.DESCRIPTOR.services_by_name["CatalogService"].full_name,
            cart_pb2.DESCRIPTOR.services_by_name["CartService"].full_name,
            admin_pb2.DESCRIPTOR.services_by_name["AdminService"].full_name,
        ]

    return register
