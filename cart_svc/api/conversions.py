"""checkout.internal.v1.CartCheckout servicer: order_svc's ConvertCart and ReleaseCart (not routed by
the edge). Request message → command → use case → response message."""

from __future__ import annotations

from typing import TypeAlias

import grpc

from cart_svc.api import messages
from cart_svc.commands import BillingChoice, ConvertCart, ReleaseCart
from cart_svc.conversions import ConversionService
from checkout.internal.v1 import cart_checkout_pb2, cart_checkout_pb2_grpc

Context: TypeAlias = grpc.aio.ServicerContext
ACTOR = "order_svc"  # the only caller of these RPCs (audit rows name it)


class CartCheckoutApi(cart_checkout_pb2_grpc.CartCheckoutServicer):
    def __init__(self, service: ConversionService) -> None:
        self._service = service

    async def ConvertCart(self, request: cart_checkout_pb2.ConvertCartRequest,
                          context: Context) -> cart_checkout_pb2.ConvertedCart:
        command = ConvertCart(cart_token=request.cart_token, order_token=request.order_token, user_id=request.user_id,
                              billing=BillingChoice(request.billing.country, request.billing.state))
        return messages.converted_cart_message(await self._service.convert(command))

    async def ReleaseCart(self, request: cart_checkout_pb2.ReleaseCartRequest,
                          context: Context) -> cart_checkout_pb2.ReleaseCartResponse:
        command = ReleaseCart(order_token=request.order_token, reopen_cart=request.reopen_cart, reason=request.reason)
        return messages.released_message(await self._service.release(command, actor=ACTOR))
