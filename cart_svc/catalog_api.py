"""CatalogService servicer: the catalog, sales and the no-op Ping."""

from __future__ import annotations

import grpc
from sqlalchemy.ext.asyncio import AsyncEngine

from cart_svc import cart_messages, catalog_repository, promotion_repository
from checkout.v1 import catalog_pb2, catalog_pb2_grpc
from common.errors import CheckoutError, ErrorCode

Context = grpc.aio.ServicerContext


class CatalogApi(catalog_pb2_grpc.CatalogServiceServicer):
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def ListInternships(self, request: catalog_pb2.ListInternshipsRequest, context: Context) -> catalog_pb2.ListInternshipsResponse:
        async with self._engine.connect() as conn:
            entries = await catalog_repository.list_internships(conn)
        return catalog_pb2.ListInternshipsResponse(internships=[cart_messages.internship_message(entry) for entry in entries])

    async def GetSale(self, request: catalog_pb2.GetSaleRequest, context: Context) -> catalog_pb2.Sale:
        async with self._engine.connect() as conn:
            sale = await promotion_repository.get_sale(conn, request.sale_slug)
        if sale is None:
            raise CheckoutError(ErrorCode.ITEM_NOT_FOUND, "sale not found", suggested_action="check the sale link")
        return cart_messages.sale_message(sale)

    async def Ping(self, request: catalog_pb2.PingRequest, context: Context) -> catalog_pb2.PingResponse:
        return catalog_pb2.PingResponse(service="cart_svc")
