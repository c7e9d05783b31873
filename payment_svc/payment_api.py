"""PaymentService servicer: message → use case → message.

RazorpayWebhook and StripeWebhook are deliberately not overridden here: their issue builds them
on payment_svc/outcomes.py; until then the generated base answers UNIMPLEMENTED (5001).
"""

from __future__ import annotations

import grpc

from checkout.v1 import payment_pb2, payment_pb2_grpc
from payment_svc.payment_messages import payment_message
from payment_svc.payment_service import PaymentService

Context = grpc.aio.ServicerContext


class PaymentApi(payment_pb2_grpc.PaymentServiceServicer):
    def __init__(self, service: PaymentService) -> None:
        self._service = service

    async def GetPayment(self, request: payment_pb2.GetPaymentRequest, context: Context) -> payment_pb2.Payment:
        return payment_message(await self._service.get_payment(request.payment_token))

    async def VerifyPayment(self, request: payment_pb2.VerifyPaymentRequest, context: Context) -> payment_pb2.Payment:
        return payment_message(await self._service.verify_payment(
            request.razorpay_order_id, request.razorpay_payment_id, request.razorpay_signature))
