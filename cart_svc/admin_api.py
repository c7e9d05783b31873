"""AdminService servicer: admin check → request message → command → use case → response message.

require_admin() comes first in every RPC, so an anonymous or non-admin caller learns nothing
about which fields would have been wrong.
"""

from __future__ import annotations

import grpc

from cart_svc import cart_messages
from cart_svc.admin_commands import NewCoupon, NewInternship, NewPlan, NewSale
from cart_svc.admin_service import AdminService
from cart_svc.domain.coupons import Coupon
from checkout.v1 import admin_pb2, admin_pb2_grpc, catalog_pb2
from common.clock import rfc3339
from common.money import format_amount
from common.request_context import require_admin

Context = grpc.aio.ServicerContext


class AdminApi(admin_pb2_grpc.AdminServiceServicer):
    def __init__(self, service: AdminService) -> None:
        self._service = service

    async def CreateCoupon(self, request: admin_pb2.CreateCouponRequest, context: Context) -> admin_pb2.Coupon:
        admin = require_admin()
        command = NewCoupon(
            code=request.code, kind=request.kind, value=request.value, currency=request.currency,
            min_subtotal=request.min_subtotal, starts_at=request.starts_at, ends_at=request.ends_at,
            max_redemptions=request.max_redemptions, max_redemptions_per_user=request.max_redemptions_per_user,
            internship_ids=tuple(request.internship_ids), listed=request.listed,
        )
        return coupon_message(await self._service.create_coupon(admin, command))

    async def CreateSale(self, request: admin_pb2.CreateSaleRequest, context: Context) -> catalog_pb2.Sale:
        admin = require_admin()
        command = NewSale(sale_slug=request.sale_slug, kind=request.kind, value=request.value,
                          internship_ids=tuple(request.internship_ids), starts_at=request.starts_at, ends_at=request.ends_at)
        return cart_messages.sale_message(await self._service.create_sale(admin, command))

    async def CreateInternship(self, request: admin_pb2.CreateInternshipRequest, context: Context) -> catalog_pb2.Internship:
        admin = require_admin()
        command = NewInternship(
            internship_id=request.internship_id, title=request.title, description=request.description,
            plans=tuple(
                NewPlan(plan_id=plan.plan_id, price=plan.price,
                        period=(plan.period.value, plan.period.unit) if plan.HasField("period") else None)
                for plan in request.plans
            ),
        )
        return cart_messages.internship_message(await self._service.create_internship(admin, command))

    async def SetExchangeRate(self, request: admin_pb2.SetExchangeRateRequest, context: Context) -> admin_pb2.ExchangeRate:
        admin = require_admin()
        view = await self._service.set_exchange_rate(admin, request.currency, request.rate)
        return admin_pb2.ExchangeRate(currency=view.currency, rate=cart_messages.rate_text(view.rate),
                                      updated_at=rfc3339(view.updated_at))


def coupon_message(coupon: Coupon) -> admin_pb2.Coupon:
    return admin_pb2.Coupon(
        code=coupon.code, kind=coupon.kind, value=format_amount(coupon.value), currency=coupon.currency,
        min_subtotal=format_amount(coupon.min_subtotal), starts_at=rfc3339(coupon.starts_at), ends_at=rfc3339(coupon.ends_at),
        max_redemptions=coupon.max_redemptions, max_redemptions_per_user=coupon.max_redemptions_per_user,
        internship_ids=sorted(coupon.internship_ids), redeemed_count=coupon.redeemed_count,
        listed=coupon.listed,
    )
