"""Wiring: one cart_svc process (python -m cart_svc) — the servicers of CatalogService, CartService,
AdminService and the internal CartCheckout on one gRPC server, the Redis cache, and the workers:
the cart sweeper, the cart-orders consumer and the outbox relay of schema `cart`."""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable

import grpc
from sqlalchemy.ext.asyncio import AsyncEngine

from cart_svc.admin import AdminService
from cart_svc.api.admin import AdminApi
from cart_svc.api.cart import CachedCartApi, CartApi
from cart_svc.api.catalog import CatalogApi
from cart_svc.api.conversions import CartCheckoutApi
from cart_svc.cache import CartCache, build_cart_cache
from cart_svc.catalog import CatalogService
from cart_svc.catalog_cache import CatalogCache
from cart_svc.conversions import ConversionService
from cart_svc.repository import Repository
from cart_svc.service import CartService
from cart_svc.tables import plumbing
from cart_svc.workers import orders
from cart_svc.workers.catalog_events import catalog_listener
from cart_svc.workers.sweeper import CartSweeper, sweeper_worker
from checkout.internal.v1 import cart_checkout_pb2, cart_checkout_pb2_grpc
from checkout.v1 import admin_pb2, admin_pb2_grpc, cart_pb2, cart_pb2_grpc, catalog_pb2, catalog_pb2_grpc
from common.clock import utc_now
from common.consumer import consumer_worker
from common.db import create_engine
from common.dead_letters import DeadLetterStore
from common.events import EventSettings
from common.outbox_relay import relay_worker
from common.server import Register
from common.service_main import Assembly
from common.settings import Settings
from common.uow import uow_factory
from common.workers import Worker

SERVICE = "cart"


@dataclasses.dataclass(frozen=True)
class Services:
    """The use cases of one process, sharing one unit-of-work factory, repository and cache."""

    catalog: CatalogService
    carts: CartService
    admin: AdminService
    conversions: ConversionService
    catalog_cache: CatalogCache


def services(engine: AsyncEngine, settings: Settings, *, cache: CartCache | None = None,
             clock: Callable[[], datetime.datetime] = utc_now,
             catalog_cache: CatalogCache | None = None, read_engine: AsyncEngine | None = None) -> Services:
    """`read_engine`: a read replica for the catalog and sales (their answers are cached anyway)."""
    uow, repository = uow_factory(engine, plumbing), Repository()
    catalog_cache = catalog_cache or CatalogCache(settings.catalog_cache_ttl)
    return Services(
        catalog=CatalogService(uow_factory(read_engine, plumbing) if read_engine else uow, repository),
        carts=CartService(uow, settings, repository=repository, clock=clock, cache=cache,
                          catalog=catalog_cache if settings.catalog_cache_ttl > 0 else None),
        admin=AdminService(uow, repository, on_catalog_change=catalog_cache.clear),
        conversions=ConversionService(uow, settings, repository=repository, clock=clock, cache=cache),
        catalog_cache=catalog_cache,
    )


def registration(engine: AsyncEngine, settings: Settings, *, cache: CartCache | None = None,
                 clock: Callable[[], datetime.datetime] = utc_now,
                 catalog_cache: CatalogCache | None = None, read_engine: AsyncEngine | None = None) -> Register:
    """Adds the four servicers to a server (tests serve them without the workers)."""
    built = services(engine, settings, cache=cache, clock=clock, catalog_cache=catalog_cache, read_engine=read_engine)

    def register(server: grpc.aio.Server) -> list[str]:
        catalog_api = CatalogApi(built.catalog, built.catalog_cache, max_age=settings.catalog_max_age)
        catalog_pb2_grpc.add_CatalogServiceServicer_to_server(catalog_api, server)
        cart_api = CartApi(built.carts) if cache is None else CachedCartApi(built.carts, cache)
        cart_pb2_grpc.add_CartServiceServicer_to_server(cart_api, server)
        admin_pb2_grpc.add_AdminServiceServicer_to_server(AdminApi(built.admin), server)
        cart_checkout_pb2_grpc.add_CartCheckoutServicer_to_server(CartCheckoutApi(built.conversions), server)
        return [
            catalog_pb2.DESCRIPTOR.services_by_name["CatalogService"].full_name,
            cart_pb2.DESCRIPTOR.services_by_name["CartService"].full_name,
            admin_pb2.DESCRIPTOR.services_by_name["AdminService"].full_name,
            cart_checkout_pb2.DESCRIPTOR.services_by_name["CartCheckout"].full_name,
        ]

    return register


def workers(engine: AsyncEngine, settings: Settings, *, cache: CartCache | None = None,
            catalog_cache: CatalogCache | None = None) -> list[Worker]:
    """The sweeper (unless CART_SWEEP_INTERVAL is 0), the cart-orders consumer, the outbox relay and
    (given the process's catalog cache) the listener that drops it when the catalog changes."""
    uow = uow_factory(engine, plumbing)
    conversions = ConversionService(uow, settings, cache=cache)
    consumer, _ = consumer_worker(DeadLetterStore(engine, plumbing), settings.nats_url,
                                  EventSettings.from_settings(settings), [orders.subscription(conversions)],
                                  name="cart-consumer")
    sweeper = sweeper_worker(CartSweeper(uow, settings, cache=cache), settings)
    listener = [catalog_listener(catalog_cache, settings)] if catalog_cache is not None else []
    return [*([sweeper] if sweeper else []), consumer, relay_worker(settings, SERVICE, plumbing), *listener]


def assemble(engine: AsyncEngine, settings: Settings) -> Assembly:
    cache, catalog_cache = build_cart_cache(settings), CatalogCache(settings.catalog_cache_ttl)
    replica = settings.cart_read_database_url != settings.cart_database_url
    read_engine = create_engine(settings, SERVICE, url=settings.cart_read_database_url) if replica else None
    return Assembly(registration(engine, settings, cache=cache, catalog_cache=catalog_cache, read_engine=read_engine),
                    workers(engine, settings, cache=cache, catalog_cache=catalog_cache),
                    on_stop=[cache.close, *([read_engine.dispose] if read_engine else [])], uses_redis=True)
