"""Admin use cases: check the request, then write the change and its audit row in one unit of work.

The caller passed in is already known to be an admin (the servicer calls require_admin() first,
before any field is looked at); it is the actor of every audit row.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable, Iterable
from decimal import Decimal

from cart_svc.admin_validation import coupon_from, internship_from, rate_from, sale_from
from cart_svc.commands import NewCoupon, NewInternship, NewSale
from cart_svc.domain.catalog import InternshipEntry
from cart_svc.domain.coupons import Coupon
from cart_svc.domain.sales import Sale
from cart_svc.events import CATALOG_CHANGED, catalog_changed
from cart_svc.repository import Repository
from common.clock import utc_now
from common.errors import CheckoutError, ErrorCode
from common.request_context import Caller
from common.uow import UnitOfWork, UnitOfWorkFactory


@dataclasses.dataclass(frozen=True)
class RateView:
    currency: str
    rate: Decimal
    updated_at: datetime.datetime


class AdminService:
    def __init__(self, uow: UnitOfWorkFactory, repository: Repository | None = None, *,
                 on_catalog_change: Callable[[], None] = lambda: None) -> None:
        self._uow = uow
        self._repo = repository or Repository()
        # this process's catalog cache, dropped at once; the others hear checkout.catalog.changed
        self._on_catalog_change = on_catalog_change

    async def create_coupon(self, admin: Caller, command: NewCoupon) -> Coupon:
        coupon = coupon_from(command)
        async with self._uow() as uow:
            await self._require_internships(uow, coupon.internship_ids)
            if not await self._repo.insert_coupon(uow.conn, coupon):
                raise CheckoutError(ErrorCode.ALREADY_EXISTS, f"coupon {coupon.code} already exists",
                                    suggested_action="choose another coupon code")
            uow.audit(actor=admin.user_id, entity_type="coupon", entity_id=coupon.code, action="create", before=None,
                      after=dataclasses.asdict(coupon))
            await uow.commit()
        return coupon

    async def create_sale(self, admin: Caller, command: NewSale) -> Sale:
        sale = sale_from(command)
        async with self._uow() as uow:
            await self._require_internships(uow, sale.internship_ids)
            if not await self._repo.insert_sale(uow.conn, sale):
                raise CheckoutError(ErrorCode.ALREADY_EXISTS, f"sale {sale.slug} already exists",
                                    suggested_action="choose another sale slug")
            uow.audit(actor=admin.user_id, entity_type="sale", entity_id=sale.slug, action="create", before=None,
                      after=dataclasses.asdict(sale))
            uow.publish(CATALOG_CHANGED, sale.slug, catalog_changed("sale", sale.slug, utc_now()))
            await uow.commit()
        self._on_catalog_change()
        return sale

    async def create_internship(self, admin: Caller, command: NewInternship) -> InternshipEntry:
        entry = internship_from(command)
        async with self._uow() as uow:
            if not await self._repo.insert_internship(uow.conn, entry):
                raise CheckoutError(ErrorCode.ALREADY_EXISTS,
                                    "an internship or plan with one of these ids already exists",
                                    suggested_action="leave the ids out to have new ones generated")
            uow.audit(actor=admin.user_id, entity_type="internship", entity_id=entry.internship_id, action="create",
                      before=None, after=dataclasses.asdict(entry))
            uow.publish(CATALOG_CHANGED, entry.internship_id, catalog_changed("internship", entry.internship_id,
                                                                                utc_now()))
            await uow.commit()
        self._on_catalog_change()
        return entry

    async def set_exchange_rate(self, admin: Caller, currency: str, rate_text: str) -> RateView:
        rate = rate_from(currency, rate_text)
        async with self._uow() as uow:
            old = await self._repo.lock_rate(uow.conn, rate.currency)
            updated_at = await self._repo.set_rate(uow.conn, rate, old, admin.user_id)
            uow.audit(actor=admin.user_id, entity_type="exchange_rate", entity_id=rate.currency, action="update",
                      before=None if old is None else {"rate": old}, after={"rate": rate.rate, "updated_at": updated_at})
            await uow.commit()
        return RateView(rate.currency, rate.rate, updated_at)

    async def _require_internships(self, uow: UnitOfWork, ids: Iterable[str]) -> None:
        missing = await self._repo.missing_internships(uow.conn, ids)
        if missing:
            raise CheckoutError(ErrorCode.ITEM_NOT_FOUND, "internship not found",
                                validation_messages=[f"internship_ids: {internship_id} not found" for internship_id in missing])
