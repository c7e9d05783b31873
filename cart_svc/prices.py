"""Gathers what pricing needs for a cart (rate, sale, coupon, the user's held redemptions) from the
repository and prices it with domain/pricing.py."""

from __future__ import annotations

import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from cart_svc.domain.cart import Cart
from cart_svc.domain.coupons import Coupon
from cart_svc.domain.currency import ExchangeRate
from cart_svc.domain.lines import LineToPrice
from cart_svc.domain.pricing import PriceBreakdown, price_cart
from cart_svc.domain.tax import Billing
from cart_svc.repository import CartTotals, Repository
from common.errors import CheckoutError, ErrorCode

CouponFacts = tuple[Coupon | None, int]  # the coupon (None: no such code) and the user's held redemptions of it


class Pricer:
    def __init__(self, repository: Repository, seller_state: str) -> None:
        self._repository = repository
        self._seller_state = seller_state

    async def price(self, conn: AsyncConnection, cart: Cart, now: datetime.datetime, *, billing: Billing | None = None,
                    currency: str | None = None, coupon_facts: CouponFacts | None = None) -> PriceBreakdown:
        """`coupon_facts`: the cart's coupon and the user's held redemptions of it, when the caller
        has read them already (ConvertCart, under the coupon's lock)."""
        repo = self._repository
        rate = await self.rate(conn, currency or cart.currency)
        sale = await repo.get_sale(conn, cart.sale_slug) if cart.sale_slug else None
        if coupon_facts is not None:
            coupon, used = coupon_facts
        else:
            coupon = await repo.get_coupon(conn, cart.coupon_code) if cart.coupon_code else None
            used = await repo.user_redemptions(conn, coupon.code, cart.user_id) if coupon else 0
        lines = [LineToPrice(line.plan.internship_id, line.plan.plan_id, line.plan.list_price, line.quantity)
                 for line in cart.lines]
        return price_cart(lines, rate, now=now, sale=sale, coupon=coupon, user_redemptions=used,
                          billing=billing, seller_state=self._seller_state)

    async def rate(self, conn: AsyncConnection, currency: str) -> ExchangeRate:
        rate = await self._repository.exchange_rate(conn, currency)
        if rate is None:
            raise CheckoutError(ErrorCode.VALIDATION_FAILED,
                                validation_messages=[f"currency: no exchange rate for {currency}"])
        return ExchangeRate(currency, rate)


def totals_of(prices: PriceBreakdown) -> CartTotals:
    return CartTotals(prices.subtotal, prices.discount_amount, prices.tax_rate, prices.tax_amount, prices.total)
