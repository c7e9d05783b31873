"""Wiring: the payment service's servicers on a gRPC server (used by __main__ and by tests).

PaymentService (public: GetPayment, VerifyPayment, RazorpayWebhook, StripeWebhook) and the
internal PaymentSessions (OpenSession, called by order_svc). The gateways and their circuit
breakers are built once per process. `python -m payment_svc` also runs, in the background, the
sweeper every PAYMENT_SWEEP_INTERVAL seconds and the reconciler every PAYMENT_RECONCILE_INTERVAL
seconds (0 turns either off).
"""

from __future__ import annotations

import asyncio
import logging

import grpc
from sqlalchemy.ext.asyncio import AsyncEngine

from checkout.internal.v1 import payment_sessions_pb2, payment_sessions_pb2_grpc
from checkout.v1 import payment_pb2, payment_pb2_grpc
from common.config import Settings
from common.server import Register
from payment_svc.gateways.registry import Gateways, build_gateways
from payment_svc.open_session import SessionOpener
from payment_svc.payment_api import PaymentApi
from payment_svc.payment_service import PaymentService
from payment_svc.reconcile import ReconcileSettings, load_reconcile_settings, run_reconciler
from payment_svc.sessions_api import PaymentSessionsApi
from payment_svc.settings import PaymentSettings, load_payment_settings
from payment_svc.sweeper import run_sweeper
from payment_svc.webhooks import WebhookHandler, WebhookSettings, load_webhook_settings

_log = logging.getLogger(__name__)


def build_registration(engine: AsyncEngine, settings: Settings, gateways: Gateways | None = None,
                       payment_settings: PaymentSettings | None = None, *, background_sweeper: bool = False,
                       webhook_settings: WebhookSettings | None = None,
                       reconcile_settings: ReconcileSettings | None = None,
                       background_reconciler: bool = False) -> Register:
    payment = payment_settings or load_payment_settings()
    webhooks = webhook_settings or load_webhook_settings(settings)
    reconcile = reconcile_settings or load_reconcile_settings()
    background: set[asyncio.Task[None]] = set()

    def register(server: grpc.aio.Server) -> list[str]:
        used = gateways or build_gateways(settings, payment)
        payment_pb2_grpc.add_PaymentServiceServicer_to_server(
            PaymentApi(PaymentService(engine, used, settings.razorpay_key_secret), WebhookHandler(engine, webhooks)),
            server)
        payment_sessions_pb2_grpc.add_PaymentSessionsServicer_to_server(
            PaymentSessionsApi(SessionOpener(engine, used, payment)), server)
        if background_sweeper and payment.sweep_interval_s > 0:
            task = asyncio.get_running_loop().create_task(
                run_sweeper(engine, interval_s=payment.sweep_interval_s, batch=payment.sweep_batch), name="payment-sweeper")
            background.add(task)  # keep a reference; asyncio.run cancels it at shutdown
            task.add_done_callback(background.discard)
            _log.info("sweeper running", extra={"interval_s": payment.sweep_interval_s})
        if background_reconciler and reconcile.interval_s > 0:
            task = asyncio.get_running_loop().create_task(run_reconciler(engine, used, reconcile), name="payment-reconciler")
            background.add(task)
            task.add_done_callback(background.discard)
            _log.info("reconciler running", extra={"interval_s": reconcile.interval_s, "after_s": reconcile.after_s})
        return [
            payment_pb2.DESCRIPTOR.services_by_name["PaymentService"].full_name,
            payment_sessions_pb2.DESCRIPTOR.services_by_name["PaymentSessions"].full_name,
        ]

    return register


def build_service(engine: AsyncEngine, settings: Settings) -> Register:
    """What `python -m payment_svc` serves: everything, with the background sweeper and reconciler."""
    return build_registration(engine, settings, background_sweeper=True, background_reconciler=True)
