"""The gRPC servicers: message → use case (service.py) → message, and nothing else.

    PaymentApi          checkout.v1.PaymentService (public, through the edge): GetPayment,
                        VerifyPayment, RazorpayWebhook, StripeWebhook
    PaymentSessionsApi  checkout.internal.v1.PaymentSessions (order_svc only, never routed by the
                        edge): OpenSession

The webhooks take a google.api.HttpBody: `request.data` is the exact raw body (the edge passes it
byte for byte) and the HTTP headers arrive as lower-cased gRPC metadata.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeAlias

import grpc
from google.api import httpbody_pb2

from checkout.internal.v1 import payment_sessions_pb2, payment_sessions_pb2_grpc
from checkout.v1 import order_pb2, payment_pb2, payment_pb2_grpc
from common.clock import rfc3339
from common.money import format_amount
from payment_svc.commands import open_session_command
from payment_svc.repository import PaymentRecord
from payment_svc.service import PaymentService
from payment_svc.webhooks import Ack, metadata_values

Context: TypeAlias = grpc.aio.ServicerContext
DEADLINE_MARGIN_S = 0.25  # answer a little before the caller gives up, so it gets our 4001
PublicKeys: TypeAlias = Mapping[str, str]  # gateway → its publishable key (Razorpay key id, Stripe pk_…)


class PaymentApi(payment_pb2_grpc.PaymentServiceServicer):
    def __init__(self, service: PaymentService, keys: PublicKeys) -> None:
        self._service = service
        self._keys = keys

    async def GetPayment(self, request: payment_pb2.GetPaymentRequest, context: Context) -> payment_pb2.Payment:
        return payment_message(await self._service.get_payment(request.payment_token), self._keys)

    async def VerifyPayment(self, request: payment_pb2.VerifyPaymentRequest, context: Context) -> payment_pb2.Payment:
        return payment_message(await self._service.verify_payment(
            request.razorpay_order_id, request.razorpay_payment_id, request.razorpay_signature), self._keys)

    async def RazorpayWebhook(self, request: httpbody_pb2.HttpBody, context: Context) -> payment_pb2.WebhookAck:
        return _ack(await self._service.razorpay_webhook(request.data, metadata_values(context.invocation_metadata())))

    async def StripeWebhook(self, request: httpbody_pb2.HttpBody, context: Context) -> payment_pb2.WebhookAck:
        return _ack(await self._service.stripe_webhook(request.data, metadata_values(context.invocation_metadata())))


class PaymentSessionsApi(payment_sessions_pb2_grpc.PaymentSessionsServicer):
    def __init__(self, service: PaymentService, keys: PublicKeys) -> None:
        self._service = service
        self._keys = keys

    async def OpenSession(self, request: payment_sessions_pb2.OpenSessionRequest,
                          context: Context) -> order_pb2.PaymentSession:
        command = open_session_command(
            order_token=request.order_token, attempt=request.attempt, amount=request.amount,
            currency=request.currency, gateway=request.gateway, user_id=request.user_id,
            order_expires_at=request.order_expires_at, payment_method=request.payment_method,
            return_url=request.return_url, cancel_url=request.cancel_url, description=request.description,
        )
        remaining = context.time_remaining()
        caller_deadline = None if remaining is None else max(0.0, remaining - DEADLINE_MARGIN_S)
        session = await self._service.open_session(command, caller_deadline_s=caller_deadline)
        return session_message(session, self._keys)


def session_message(session: PaymentRecord, keys: PublicKeys) -> order_pb2.PaymentSession:
    return order_pb2.PaymentSession(
        payment_token=session.token, gateway=session.gateway, gateway_order_id=session.gateway_order_id or "",
        checkout_url=session.checkout_url or "", status=session.status, amount=format_amount(session.amount),
        currency=session.currency, expires_at=rfc3339(session.expires_at), order_token=session.order_token,
        key_id=keys.get(session.gateway, ""), payment_method=session.payment_method or "",
    )


def payment_message(payment: PaymentRecord, keys: PublicKeys) -> payment_pb2.Payment:
    return payment_pb2.Payment(
        payment_token=payment.token, order_token=payment.order_token, status=payment.status,
        gateway=payment.gateway, gateway_order_id=payment.gateway_order_id or "",
        gateway_payment_id=payment.gateway_payment_id or "", amount=format_amount(payment.amount),
        currency=payment.currency, checkout_url=payment.checkout_url or "", expires_at=rfc3339(payment.expires_at),
        created_at=rfc3339(payment.created_at), updated_at=rfc3339(payment.updated_at),
        key_id=keys.get(payment.gateway, ""), payment_method=payment.payment_method or "",
    )


def _ack(ack: Ack) -> payment_pb2.WebhookAck:
    return payment_pb2.WebhookAck(received=True, duplicate=ack.duplicate, event_id=ack.event_id)
