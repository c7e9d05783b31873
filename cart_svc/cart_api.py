"""CartService servicer: request message → command → use case → response message. Nothing else."""

from __future__ import annotations

import grpc

from cart_svc import cart_messages
from cart_svc.cart_service import CartService
from cart_svc.commands import BillingChoice, ItemChoice, NewCart
from checkout.v1 import cart_pb2, cart_pb2_grpc
from common.request_context import caller

Context = grpc.aio.ServicerContext


def _item(message: cart_pb2.CartItemInput | cart_pb2.AddItemRequest) -> ItemChoice:
    period = (message.period.value, message.period.unit) if message.HasField("period") else None
    return ItemChoice(plan_id=message.plan_id, internship_id=message.internship_id, period=period, quantity=message.quantity)


class CartApi(cart_pb2_grpc.CartServiceServicer):
    def __init__(self, service: CartService) -> None:
        self._service = service

    async def CreateCart(self, request: cart_pb2.CreateCartRequest, context: Context) -> cart_pb2.Cart:
        command = NewCart(
            items=tuple(_item(item) for item in request.items),
            currency=request.currency or "INR",
            sale_slug=request.sale_slug,
            device_id=request.device_id,
            analytics_data=tuple((entry.name, entry.value) for entry in request.analytics_data),
        )
        return cart_messages.cart_message(await self._service.create_cart(caller(), command))

    async def GetCart(self, request: cart_pb2.GetCartRequest, context: Context) -> cart_pb2.Cart:
        return cart_messages.cart_message(await self._service.get_cart(caller(), request.token))

    async def AddItem(self, request: cart_pb2.AddItemRequest, context: Context) -> cart_pb2.Cart:
        return cart_messages.cart_message(await self._service.add_item(caller(), request.token, _item(request)))

    async def SwitchPlan(self, request: cart_pb2.SwitchPlanRequest, context: Context) -> cart_pb2.Cart:
        return cart_messages.cart_message(await self._service.switch_plan(caller(), request.token, request.plan_id, request.item_id))

    async def RemoveItem(self, request: cart_pb2.RemoveItemRequest, context: Context) -> cart_pb2.Cart:
        return cart_messages.cart_message(await self._service.remove_item(caller(), request.token, request.item_id))

    async def CheckCartAuth(self, request: cart_pb2.CheckCartAuthRequest, context: Context) -> cart_pb2.CartAuthStatus:
        return cart_messages.auth_message(await self._service.check_auth(caller(), request.token))

    async def LoginToCart(self, request: cart_pb2.LoginToCartRequest, context: Context) -> cart_pb2.Cart:
        return cart_messages.cart_message(await self._service.login(caller(), request.token))

    async def EstimateCart(self, request: cart_pb2.EstimateCartRequest, context: Context) -> cart_pb2.Estimate:
        billing = BillingChoice(request.billing.country, request.billing.state)
        return cart_messages.estimate_message(await self._service.estimate(caller(), request.cart_token, billing, request.currency))

    async def ListDiscounts(self, request: cart_pb2.ListDiscountsRequest, context: Context) -> cart_pb2.ListDiscountsResponse:
        return cart_messages.discounts_message(await self._service.discounts(caller(), request.token))

    async def ApplyCoupon(self, request: cart_pb2.ApplyCouponRequest, context: Context) -> cart_pb2.Cart:
        return cart_messages.cart_message(await self._service.apply_coupon(caller(), request.token, request.code))

    async def RemoveCoupon(self, request: cart_pb2.RemoveCouponRequest, context: Context) -> cart_pb2.Cart:
        return cart_messages.cart_message(await self._service.remove_coupon(caller(), request.token))
