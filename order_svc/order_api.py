"""OrderService servicer: message → command → use case → message."""

from __future__ import annotations

import grpc

from checkout.v1 import order_pb2, order_pb2_grpc
from common.request_context import caller
from order_svc.commands import OrderRequest
from order_svc.order_service import OrderService

Context = grpc.aio.ServicerContext


class OrderApi(order_pb2_grpc.OrderServiceServicer):
    def __init__(self, service: OrderService) -> None:
        self._service = service

    async def CreateOrder(self, request: order_pb2.CreateOrderRequest, context: Context) -> order_pb2.Order:
        metadata = dict(context.invocation_metadata() or ())
        command = OrderRequest(
            cart_token=request.cart_token, billing_country=request.billing.country, billing_state=request.billing.state,
            payment_method=request.payment_method, gateway=request.gateway, return_url=request.return_url,
            cancel_url=request.cancel_url,
        )
        raw = request.SerializeToString(deterministic=True)
        return await self._service.create_order(caller(), command, raw, str(metadata.get("idempotency-key", "")))

    async def GetOrder(self, request: order_pb2.GetOrderRequest, context: Context) -> order_pb2.Order:
        return await self._service.get_order(caller(), request.order_token)

    async def CreatePaymentAttempt(self, request: order_pb2.CreatePaymentAttemptRequest, context: Context) -> order_pb2.PaymentSession:
        return await self._service.new_attempt(caller(), request.order_token, request.gateway)
