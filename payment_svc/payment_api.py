"""PaymentService servicer: message → use case → message.

The webhooks take a google.api.HttpBody: `request.data` is the exact raw body (the edge passes it
byte for byte) and the HTTP headers arrive as lower-cased gRPC metadata. The work is in
payment_svc/webhooks/handler.py. Without a handler (a test wiring only the other RPCs) they answer
UNIMPLEMENTED (5001), as the generated base does.
"""

from __future__ import annotations

import grpc
from google.api import httpbody_pb2

from checkout.v1 import payment_pb2, payment_pb2_grpc
from payment_svc.payment_messages import payment_message
from payment_svc.payment_service import PaymentService
from payment_svc.webhooks import Ack, WebhookHandler, metadata_values

Context = grpc.aio.ServicerContext


class PaymentApi(payment_pb2_grpc.PaymentServiceServicer):
    def __init__(self, service: PaymentService, webhooks: WebhookHandler | None = None) -> None:
        self._service = service
        self._webhooks = webhooks

    async def GetPayment(self, request: payment_pb2.GetPaymentRequest, context: Context) -> payment_pb2.Payment:
        return payment_message(await self._service.get_payment(request.payment_token))

    async def VerifyPayment(self, request: payment_pb2.VerifyPaymentRequest, context: Context) -> payment_pb2.Payment:
        return payment_message(await self._service.verify_payment(
            request.razorpay_order_id, request.razorpay_payment_id, request.razorpay_signature))

    async def RazorpayWebhook(self, request: httpbody_pb2.HttpBody, context: Context) -> payment_pb2.WebhookAck:
        if self._webhooks is None:
            raise NotImplementedError
        return _ack(await self._webhooks.razorpay(request.data, metadata_values(context.invocation_metadata())))

    async def StripeWebhook(self, request: httpbody_pb2.HttpBody, context: Context) -> payment_pb2.WebhookAck:
        if self._webhooks is None:
            raise NotImplementedError
        return _ack(await self._webhooks.stripe(request.data, metadata_values(context.invocation_metadata())))


def _ack(ack: Ack) -> payment_pb2.WebhookAck:
    return payment_pb2.WebhookAck(received=True, duplicate=ack.duplicate, event_id=ack.event_id)
