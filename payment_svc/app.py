"""One payment_svc process, wired: `assemble(engine, settings)` → its servicers and its workers.

Servicers: PaymentService (public: GetPayment, VerifyPayment, RazorpayWebhook, StripeWebhook),
RefundService (admins: CreateRefund, ListRefunds) and the internal PaymentSessions (OpenSession,
called by order_svc). Workers: the session-expiry
sweeper every PAYMENT_SWEEP_INTERVAL seconds and the reconciler every PAYMENT_RECONCILE_INTERVAL
seconds (0 turns either off; the refund reconciler runs beside the reconciler, at its interval), and the relay of the `payment` outbox. The gateways and their
circuit breakers are built once per process (a breaker only means something if it lives as long).

Tests call `assemble(engine, settings, gateways=…)` to share the gateways they inspect, and serve
`assembly.register` without starting the workers.
"""

from __future__ import annotations

import dataclasses

import grpc
from sqlalchemy.ext.asyncio import AsyncEngine

from checkout.internal.v1 import payment_sessions_pb2, payment_sessions_pb2_grpc
from checkout.v1 import payment_pb2, payment_pb2_grpc, refund_pb2, refund_pb2_grpc
from common.server import Register
from common.service_main import Assembly
from common.settings import Settings
from common.uow import uow_factory
from payment_svc.api import PaymentApi, PaymentSessionsApi, PublicKeys
from payment_svc.gateways.registry import Gateways, build_gateways
from payment_svc.open_session import SessionOpener
from payment_svc.refund_api import RefundApi
from payment_svc.refund_repository import RefundRepository
from payment_svc.refunds import RefundService
from payment_svc.repository import PaymentRepository
from payment_svc.retention import webhook_body_task
from payment_svc.service import PaymentService
from payment_svc.tables import PLUMBING
from payment_svc.tuning import ReconcileTuning, SessionTuning, SweepTuning, WebhookTuning
from payment_svc.webhooks import WebhookHandler
from payment_svc.workers.reconciler import Reconciler, reconciler_worker
from payment_svc.workers.refund_reconciler import RefundReconciler, refund_reconciler_worker
from payment_svc.workers.relay import payment_relay
from payment_svc.workers.sweeper import SessionSweeper, sweeper_worker


@dataclasses.dataclass(frozen=True)
class PaymentParts:
    """What a process (or a test) builds once: the use cases, the workers' loops, the gateways."""

    service: PaymentService
    sweeper: SessionSweeper
    reconciler: Reconciler
    gateways: Gateways
    refunds: RefundService
    refund_reconciler: RefundReconciler


def build_parts(engine: AsyncEngine, settings: Settings, gateways: Gateways | None = None) -> PaymentParts:
    uow = uow_factory(engine, PLUMBING)
    repository = PaymentRepository()
    gateways = gateways if gateways is not None else build_gateways(settings)
    opener = SessionOpener(uow, repository, gateways, SessionTuning.from_settings(settings))
    refund_repository = RefundRepository()
    webhooks = WebhookHandler(uow, repository, WebhookTuning.from_settings(settings), refunds=refund_repository)
    service = PaymentService(uow, repository, gateways, opener, webhooks, settings.razorpay_key_secret)
    sweeper = SessionSweeper(uow, repository, batch=settings.payment_sweep_batch)
    reconciler = Reconciler(uow, repository, gateways, ReconcileTuning.from_settings(settings))
    refunds = RefundService(uow, refund_repository, repository, gateways)
    refund_reconciler = RefundReconciler(uow, refund_repository, refunds, batch=settings.payment_reconcile_batch)
    return PaymentParts(service, sweeper, reconciler, gateways, refunds, refund_reconciler)


def public_keys(settings: Settings) -> PublicKeys:
    """Each gateway's publishable key, which the browser needs to open its checkout."""
    return {"razorpay": settings.razorpay_key_id, "stripe": settings.stripe_publishable_key}


def register_servicers(service: PaymentService, keys: PublicKeys, refunds: RefundService) -> Register:
    def register(server: grpc.aio.Server) -> list[str]:
        payment_pb2_grpc.add_PaymentServiceServicer_to_server(PaymentApi(service, keys), server)
        payment_sessions_pb2_grpc.add_PaymentSessionsServicer_to_server(PaymentSessionsApi(service, keys), server)
        refund_pb2_grpc.add_RefundServiceServicer_to_server(RefundApi(refunds), server)
        return [payment_pb2.DESCRIPTOR.services_by_name["PaymentService"].full_name,
                refund_pb2.DESCRIPTOR.services_by_name["RefundService"].full_name,
                payment_sessions_pb2.DESCRIPTOR.services_by_name["PaymentSessions"].full_name]

    return register


def assemble(engine: AsyncEngine, settings: Settings, *, gateways: Gateways | None = None) -> Assembly:
    parts = build_parts(engine, settings, gateways)
    assembly = Assembly(register_servicers(parts.service, public_keys(settings), parts.refunds),
                        workers=[payment_relay(settings)],
                        retention=[webhook_body_task(settings)])
    sweep, reconcile = SweepTuning.from_settings(settings), ReconcileTuning.from_settings(settings)
    if sweep.interval_s > 0:
        assembly.workers.append(sweeper_worker(parts.sweeper, sweep))
    if reconcile.interval_s > 0:
        assembly.workers.append(reconciler_worker(parts.reconciler, reconcile))
        assembly.workers.append(refund_reconciler_worker(parts.refund_reconciler, reconcile))
    if gateways is None:  # built here: closed here
        async def close_gateways() -> None:
            await parts.gateways.close()

        assembly.on_stop.append(close_gateways)
    return assembly
