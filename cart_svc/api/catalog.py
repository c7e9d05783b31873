"""CatalogService servicer: the catalog, sales and the no-op Ping.

The catalog and the sales are cacheable reads (CONTRACT.md "Catalog caching"): each answer carries
`etag` and `cache-control` as initial metadata (the edge makes them response headers), comes from
the process's CatalogCache, and an `if-none-match` naming the current ETag gets an empty answer
marked not-modified, which the edge sends as 304 with no body.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeAlias, TypeVar

import grpc
from google.protobuf.message import Message

from cart_svc.api import messages
from cart_svc.catalog import CatalogService
from cart_svc.catalog_cache import CatalogCache
from checkout.v1 import catalog_pb2, catalog_pb2_grpc
from common.etags import NOT_MODIFIED_METADATA, none_match

Context: TypeAlias = grpc.aio.ServicerContext
M = TypeVar("M", bound=Message)


class CatalogApi(catalog_pb2_grpc.CatalogServiceServicer):
    def __init__(self, service: CatalogService, cache: CatalogCache, *, max_age: int) -> None:
        self._service = service
        self._cache = cache
        self._cache_control = f"public, max-age={max_age}"

    async def ListInternships(self, request: catalog_pb2.ListInternshipsRequest,
                              context: Context) -> catalog_pb2.ListInternshipsResponse:
        return await self._cached("internships", self._internships, context)

    async def GetSale(self, request: catalog_pb2.GetSaleRequest, context: Context) -> catalog_pb2.Sale:
        slug = request.sale_slug

        async def load() -> catalog_pb2.Sale:
            return messages.sale_message(await self._service.sale(slug))

        return await self._cached(f"sale:{slug}", load, context)

    async def Ping(self, request: catalog_pb2.PingRequest, context: Context) -> catalog_pb2.PingResponse:
        return catalog_pb2.PingResponse(service="cart_svc")

    async def _internships(self) -> catalog_pb2.ListInternshipsResponse:
        entries = await self._service.internships()
        return catalog_pb2.ListInternshipsResponse(internships=[messages.internship_message(e) for e in entries])

    async def _cached(self, key: str, load: Callable[[], Awaitable[M]], context: Context) -> M:
        answer = await self._cache.get(key, load)
        headers = [("etag", answer.etag), ("cache-control", self._cache_control)]
        if none_match(dict(context.invocation_metadata() or ()).get("if-none-match"), answer.etag):
            await context.send_initial_metadata([*headers, (NOT_MODIFIED_METADATA, "1")])
            return type(answer.message)()
        await context.send_initial_metadata(headers)
        return answer.message
