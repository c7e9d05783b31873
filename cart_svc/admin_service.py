"""Admin use cases: check the request, then write the change and its audit row in one transaction.

The caller passed in is already known to be an admin (the servicer calls require_admin() first,
before any field is looked at); it is the actor of every audit row.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterable
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from cart_svc import admin_repository
from cart_svc.admin_commands import NewCoupon, NewInternship, NewSale
from cart_svc.admin_validation import coupon_from, internship_from, rate_from, sale_from
from cart_svc.catalog_repository import InternshipEntry
from cart_svc.domain.coupons import Coupon
from cart_svc.domain.sales import Sale
from common.audit import append_audit
from common.errors import CheckoutError, ErrorCode
from common.request_context import Caller


@dataclasses.dataclass(frozen=True)
class RateView:
    currency: str
    rate: Decimal
    updated_at: datetime.datetime


class AdminService:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create_coupon(self, admin: Caller, command: NewCoupon) -> Coupon:
        coupon = coupon_from(command)
        async with self._engine.begin() as conn:
            await _require_internships(conn, coupon.internship_ids)
            if not await admin_repository.insert_coupon(conn, coupon):
                raise CheckoutError(ErrorCode.ALREADY_EXISTS, f"coupon {coupon.code} already exists",
                                    suggested_action="choose another coupon code")
            await append_audit(conn, actor=admin.user_id, entity_type="coupon", entity_id=coupon.code,
                               action="create", before=None, after=dataclasses.asdict(coupon))
        return coupon

    async def create_sale(self, admin: Caller, command: NewSale) -> Sale:
        sale = sale_from(command)
        async with self._engine.begin() as conn:
            await _require_internships(conn, sale.internship_ids)
            if not await admin_repository.insert_sale(conn, sale):
                raise CheckoutError(ErrorCode.ALREADY_EXISTS, f"sale {sale.slug} already exists",
                                    suggested_action="choose another sale slug")
            await append_audit(conn, actor=admin.user_id, entity_type="sale", entity_id=sale.slug,
                               action="create", before=None, after=dataclasses.asdict(sale))
        return sale

    async def create_internship(self, admin: Caller, command: NewInternship) -> InternshipEntry:
        entry = internship_from(command)
        async with self._engine.begin() as conn:
            if not await admin_repository.insert_internship(conn, entry):
                raise CheckoutError(ErrorCode.ALREADY_EXISTS, "an internship or plan with one of these ids already exists",
                                    suggested_action="leave the ids out to have new ones generated")
            await append_audit(conn, actor=admin.user_id, entity_type="internship", entity_id=entry.internship_id,
                               action="create", before=None, after=dataclasses.asdict(entry))
        return entry

    async def set_exchange_rate(self, admin: Caller, currency: str, rate_text: str) -> RateView:
        rate = rate_from(currency, rate_text)
        async with self._engine.begin() as conn:
            old = await admin_repository.lock_rate(conn, rate.currency)
            updated_at = await admin_repository.set_rate(conn, rate, old, admin.user_id)
            await append_audit(conn, actor=admin.user_id, entity_type="exchange_rate", entity_id=rate.currency,
                               action="update", before=None if old is None else {"rate": old},
                               after={"rate": rate.rate, "updated_at": updated_at})
        return RateView(rate.currency, rate.rate, updated_at)


async def _require_internships(conn: AsyncConnection, ids: Iterable[str]) -> None:
    missing = await admin_repository.missing_internships(conn, ids)
    if missing:
        raise CheckoutError(ErrorCode.ITEM_NOT_FOUND, "internship not found",
                            validation_messages=[f"internship_ids: {internship_id} not found" for internship_id in missing])
