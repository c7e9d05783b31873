"""AdminService servicer: admin check → request message → command → use case → response message.

require_admin() comes first in every RPC, so an anonymous or non-admin caller learns nothing
about which fields would have been wrong.
"""

from __future__ import annotations

from typing import TypeAlias

import grpc

from cart_svc.admin import AdminService
from cart_svc.api import messages
from cart_svc.commands import NewCoupon, NewInternship, NewPlan, NewSale
from checkout.v1 import admin_pb2, admin_pb2_grpc, catalog_pb2
from common.request_context import require_admin

Context: TypeAlias = grpc.aio.ServicerContext


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
        return messages.coupon_message(await self._service.create_coupon(admin, command))

    async def CreateSale(self, request: admin_pb2.CreateSaleRequest, context: Context) -> catalog_pb2.Sale:
        admin = require_admin()
        command = NewSale(sale_slug=request.sale_slug, kind=request.kind, value=request.value,
                          internship_ids=tuple(request.internship_ids), starts_at=request.starts_at, ends_at=request.ends_at)
        return messages.sale_message(await self._service.create_sale(admin, command))

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
        return messages.internship_message(await self._service.create_internship(admin, command))

    async def SetExchangeRate(self, request: admin_pb2.SetExchangeRateRequest, context: Context) -> admin_pb2.ExchangeRate:
        admin = require_admin()
        return messages.rate_message(await self._service.set_exchange_rate(admin, request.currency, request.rate))

