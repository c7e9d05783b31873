"""CatalogService servicer: the catalog, sales and the no-op Ping."""

from __future__ import annotations

from typing import TypeAlias

import grpc

from cart_svc.api import messages
from cart_svc.catalog import CatalogService
from checkout.v1 import catalog_pb2, catalog_pb2_grpc

Context: TypeAlias = grpc.aio.ServicerContext


class CatalogApi(catalog_pb2_grpc.CatalogServiceServicer):
    def __init__(self, service: CatalogService) -> None:
        self._service = service

    async def ListInternships(self, request: catalog_pb2.ListInternshipsRequest,
                              context: Context) -> catalog_pb2.ListInternshipsResponse:
        entries = await self._service.internships()
        return catalog_pb2.ListInternshipsResponse(internships=[messages.internship_message(entry) for entry in entries])

    async def GetSale(self, request: catalog_pb2.GetSaleRequest, context: Context) -> catalog_pb2.Sale:
        return messages.sale_message(await self._service.sale(request.sale_slug))

    async def Ping(self, request: catalog_pb2.PingRequest, context: Context) -> catalog_pb2.PingResponse:
        return catalog_pb2.PingResponse(service="cart_svc")
