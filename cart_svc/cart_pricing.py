"""Gathers what pricing needs for a cart (rate, sale, coupon, the user's redemptions) and prices it."""

from __future__ import annotations

import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from cart_svc import catalog_repository, promotion_repository
from cart_svc.cart_repository import CartTotals
from cart_svc.domain.cart import Cart
from cart_svc.domain.currency import ExchangeRate
from cart_svc.domain.lines import LineToPrice
from cart_svc.domain.pricing import PriceBreakdown, price_cart
from cart_svc.domain.tax import Billing
from common.errors import CheckoutError, ErrorCode


async def price(conn: AsyncConnection, cart: Cart, now: datetime.datetime, seller_state: str, *,
                billing: Billing | None = None, currency: str | None = None) -> PriceBreakdown:
    rate = await current_rate(conn, currency or cart.currency)
    sale = await promotion_repository.get_sale(conn, cart.sale_slug) if cart.sale_slug else None
    coupon = await promotion_repository.get_coupon(conn, cart.coupon_code) if cart.coupon_code else None
    used = await promotion_repository.user_redemptions(conn, coupon.code, cart.user_id) if coupon else 0
    lines = [LineToPrice(line.plan.internship_id, line.plan.plan_id, line.plan.list_price, line.quantity) for line in cart.lines]
    return price_cart(lines, rate, now=now, sale=sale, coupon=coupon, user_redemptions=used,
                      billing=billing, seller_state=seller_state)


async def current_rate(conn: AsyncConnection, currency: str) -> ExchangeRate:
    rate = await catalog_repository.exchange_rate(conn, currency)
    if rate is None:
        raise CheckoutError(ErrorCode.VALIDATION_FAILED, validation_messages=[f"currency: no exchange rate for {currency}"])
    return ExchangeRate(currency, rate)


def totals_of(prices: PriceBreakdown) -> CartTotals:
    return CartTotals(prices.subtotal, prices.discount_amount, prices.tax_rate, prices.tax_amount, prices.total)
