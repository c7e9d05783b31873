"""Wiring: what `python -m order_svc` runs (`assemble`), built from `components` so that tests can
reach the same pieces (the service, the consumers' use cases, the sweepers)."""

from __future__ import annotations

import dataclasses
import datetime

import grpc
from sqlalchemy.ext.asyncio import AsyncEngine

from checkout.v1 import order_pb2_grpc
from common import tls
from common.consumer import Subscription, consumer_worker
from common.dead_letters import DeadLetterStore
from common.events import EventSettings
from common.outbox_relay import relay_worker
from common.service_main import Assembly
from common.settings import Settings
from common.uow import UnitOfWorkFactory, uow_factory
from common.workers import Worker, periodic
from order_svc.api import SERVICE_NAME, OrderApi
from order_svc.clients import CartCheckoutClient, PaymentSessionsClient
from order_svc.domain.invoices import Party
from order_svc.domain.return_urls import Origin, development_origins, parse_origin
from order_svc.progress import OrderProgress
from order_svc.repository import OrderRepository
from order_svc.service import OrderService
from order_svc.tables import plumbing
from order_svc.tax_document_repository import TaxDocumentRepository
from order_svc.tax_documents import Issuer, TaxDocuments
from order_svc.workers import consumers
from order_svc.workers.sweepers import OrderExpiry, PlacementRecovery

SERVICE = "order"


@dataclasses.dataclass
class Components:
    uow: UnitOfWorkFactory
    repository: OrderRepository
    service: OrderService
    documents: TaxDocuments
    progress: OrderProgress
    recovery: PlacementRecovery
    expiry: OrderExpiry
    subscriptions: list[Subscription]
    cart: CartCheckoutClient
    payments: PaymentSessionsClient

    def register(self, server: grpc.aio.Server) -> list[str]:
        order_pb2_grpc.add_OrderServiceServicer_to_server(OrderApi(self.service, self.documents), server)
        return [SERVICE_NAME]

    async def close(self) -> None:
        await self.cart.close()
        await self.payments.close()


# a list target (every replica, SERVICE_REPLICAS > 1) spreads the calls and skips a dead replica
BALANCED = (("grpc.lb_policy_name", "round_robin"),)


def components(engine: AsyncEngine, settings: Settings) -> Components:
    uow = uow_factory(engine, plumbing)
    repository = OrderRepository()
    cart = CartCheckoutClient(settings.cart_grpc_address, timeout=settings.order_cart_call_timeout,
                              channel=tls.channel(settings, settings.cart_grpc_address, "cart", BALANCED))
    payments = PaymentSessionsClient(settings.payment_grpc_address, timeout=settings.order_payment_call_timeout,
                                     channel=tls.channel(settings, settings.payment_grpc_address, "payment", BALANCED))
    issuer = Issuer(Party(settings.seller_name, settings.seller_address, settings.seller_state, settings.seller_gstin),
                    settings.invoice_sac)
    documents = TaxDocuments(uow, repository, TaxDocumentRepository(), issuer)
    progress = OrderProgress(uow, repository, documents=documents)
    service = OrderService(uow, repository, cart, payments, order_ttl=datetime.timedelta(seconds=settings.order_ttl),
                           key_lease=datetime.timedelta(seconds=settings.order_idempotency_lease),
                           return_origins=return_origins(settings), apply_capture=progress.captured_at_open)
    # never below twice the ConvertCart deadline: a conversion still in flight is not taken for abandoned
    placement_timeout = max(settings.order_placement_timeout, 2 * settings.order_cart_call_timeout)
    recovery = PlacementRecovery(
        uow, repository, cart, timeout=datetime.timedelta(seconds=placement_timeout),
        # a release claimed by a worker that died or failed is taken again after this long
        claim_lease=datetime.timedelta(seconds=max(30.0, 4 * settings.order_cart_call_timeout)),
        batch=settings.order_sweep_batch)
    expiry = OrderExpiry(uow, repository, batch=settings.order_sweep_batch)
    return Components(uow, repository, service, documents, progress, recovery, expiry, consumers.subscriptions(progress), cart, payments)


def return_origins(settings: Settings) -> tuple[Origin, ...]:
    """RETURN_URL_ORIGINS, or the development default; a bad entry stops the process, naming it."""
    texts = settings.return_url_origins or development_origins(settings.edge_domain, settings.edge_port,
                                                                  settings.edge_tls_port)
    try:
        return tuple(parse_origin(text) for text in texts)
    except ValueError as error:
        raise ValueError(f"invalid settings: RETURN_URL_ORIGINS: {error}") from None


def assemble(engine: AsyncEngine, settings: Settings) -> Assembly:
    parts = components(engine, settings)
    consumer, _ = consumer_worker(DeadLetterStore(engine, plumbing), settings.nats_url,
                                  EventSettings.from_settings(settings), parts.subscriptions, name="order-consumers")
    workers: list[Worker] = [relay_worker(settings, SERVICE, plumbing), consumer]
    if settings.order_sweep_interval > 0:
        workers += [periodic("order-placement-recovery", settings.order_sweep_interval, parts.recovery.one_pass),
                    periodic("order-expiry", settings.order_sweep_interval, parts.expiry.one_pass)]
    return Assembly(parts.register, workers, [parts.close])
