"""CartService servicers: request message → command → use case → response message. CachedCartApi
answers reads from the Redis cache (cart_svc/cache.py) when it can, checking ownership on every hit."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias

import grpc

from cart_svc import access
from cart_svc.api import messages
from cart_svc.cache import CartCache, CartHead
from cart_svc.commands import BillingChoice, ItemChoice, NewCart
from cart_svc.service import CartService
from cart_svc.validation import check_billing, check_currency, check_uuid
from checkout.v1 import cart_pb2, cart_pb2_grpc
from common.request_context import caller

Context: TypeAlias = grpc.aio.ServicerContext


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
        return messages.cart_message(await self._service.create_cart(caller(), command))

    async def GetCart(self, request: cart_pb2.GetCartRequest, context: Context) -> cart_pb2.Cart:
        return messages.cart_message(await self._service.get_cart(caller(), request.token))

    async def AddItem(self, request: cart_pb2.AddItemRequest, context: Context) -> cart_pb2.Cart:
        return messages.cart_message(await self._service.add_item(caller(), request.token, _item(request)))

    async def SwitchPlan(self, request: cart_pb2.SwitchPlanRequest, context: Context) -> cart_pb2.Cart:
        return messages.cart_message(await self._service.switch_plan(caller(), request.token, request.plan_id, request.item_id))

    async def RemoveItem(self, request: cart_pb2.RemoveItemRequest, context: Context) -> cart_pb2.Cart:
        return messages.cart_message(await self._service.remove_item(caller(), request.token, request.item_id))

    async def CheckCartAuth(self, request: cart_pb2.CheckCartAuthRequest, context: Context) -> cart_pb2.CartAuthStatus:
        return messages.auth_message(await self._service.check_auth(caller(), request.token))

    async def LoginToCart(self, request: cart_pb2.LoginToCartRequest, context: Context) -> cart_pb2.Cart:
        return messages.cart_message(await self._service.login(caller(), request.token))

    async def EstimateCart(self, request: cart_pb2.EstimateCartRequest, context: Context) -> cart_pb2.Estimate:
        billing = BillingChoice(request.billing.country, request.billing.state)
        return messages.estimate_message(await self._service.estimate(caller(), request.cart_token, billing, request.currency))

    async def ListDiscounts(self, request: cart_pb2.ListDiscountsRequest, context: Context) -> cart_pb2.ListDiscountsResponse:
        return messages.discounts_message(await self._service.discounts(caller(), request.token))

    async def ApplyCoupon(self, request: cart_pb2.ApplyCouponRequest, context: Context) -> cart_pb2.Cart:
        return messages.cart_message(await self._service.apply_coupon(caller(), request.token, request.code))

    async def RemoveCoupon(self, request: cart_pb2.RemoveCouponRequest, context: Context) -> cart_pb2.Cart:
        return messages.cart_message(await self._service.remove_coupon(caller(), request.token))


class CachedCartApi(CartApi):
    """CartApi answering reads from the cache when it can; every miss and every change goes to CartService."""

    def __init__(self, service: CartService, cache: CartCache) -> None:
        super().__init__(service)
        self._cache = cache

    async def GetCart(self, request: cart_pb2.GetCartRequest, context: Context) -> cart_pb2.Cart:
        head = await self._head(request.token) if _valid(lambda p: check_uuid(p, "token", request.token)) else None
        if head is None:
            return await super().GetCart(request, context)
        return cart_pb2.Cart.FromString(head.body)

    async def EstimateCart(self, request: cart_pb2.EstimateCartRequest, context: Context) -> cart_pb2.Estimate:
        token, billing, currency = request.cart_token, request.billing, request.currency

        def checks(problems: list[str]) -> None:
            check_uuid(problems, "cart_token", token)
            check_billing(problems, billing.country, billing.state)
            check_currency(problems, "currency", currency)

        head, cached = (await self._cache.head_and_estimate(token, billing.country, billing.state, currency)
                        if _valid(checks) else (None, None))
        if head is not None:
            access.ensure_may_touch_owner(head.owner, caller())
        if cached is None:
            return await super().EstimateCart(request, context)
        return cart_pb2.Estimate.FromString(cached)

    async def ListDiscounts(self, request: cart_pb2.ListDiscountsRequest,
                            context: Context) -> cart_pb2.ListDiscountsResponse:
        head = await self._head(request.token) if _valid(lambda p: check_uuid(p, "token", request.token)) else None
        cached = await self._cache.discounts(head, request.token) if head else None
        if cached is None:
            return await super().ListDiscounts(request, context)
        return cart_pb2.ListDiscountsResponse.FromString(cached)

    async def _head(self, token: str) -> CartHead | None:
        head = await self._cache.head(token)
        if head is not None:
            access.ensure_may_touch_owner(head.owner, caller())
        return head


def _valid(checks: Callable[[list[str]], None]) -> bool:
    """Invalid requests skip the cache, so the service reports them exactly as without it."""
    problems: list[str] = []
    checks(problems)
    return not problems
