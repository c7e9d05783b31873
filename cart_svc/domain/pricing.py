"""What a cart costs: sale, conversion, coupon, tax, in that order.

1. The sale (if open) lowers each unit's INR list price; then each unit price is converted
   to the cart's currency and rounded half-up. Line total = unit price x quantity.
2. subtotal = sum of line totals. The sale is therefore already *inside* the subtotal: it
   is NOT listed in `discounts` and NOT counted in `discount_amount` (it would otherwise be
   subtracted twice). It is reported beside them, as `sale_slug` and `sale_savings`, and per
   line as `list_unit_price` vs `unit_price`.
3. discounts = the coupon, if it applies (see coupons.py); discount_amount = their sum,
   never more than the subtotal.
4. taxable_amount = subtotal - discount_amount; taxes per tax.py; total = taxable + taxes.

Every amount is a 2-place Decimal in the cart's currency, and these identities hold exactly:
subtotal = sum(line totals), taxable = subtotal - discount_amount,
tax_amount = sum(tax lines), total = taxable + tax_amount.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from cart_svc.domain.coupons import Coupon, CouponVerdict, check_coupon
from cart_svc.domain.currency import ExchangeRate, convert_from_inr
from cart_svc.domain.lines import LineToPrice, PricedLine
from cart_svc.domain.sales import Sale, sale_unit_price
from cart_svc.domain.tax import DEFAULT_SELLER_STATE, Billing, TaxLine, compute_taxes, effective_tax_rate
from common.money import ZERO


@dataclass(frozen=True)
class DiscountLine:
    code: str
    description: str
    amount: Decimal


@dataclass(frozen=True)
class PriceBreakdown:
    currency: str
    exchange_rate: Decimal  # units of `currency` per 1 INR, frozen into the order
    lines: tuple[PricedLine, ...]
    subtotal: Decimal  # after the sale
    discounts: tuple[DiscountLine, ...]  # the coupon only
    discount_amount: Decimal
    taxable_amount: Decimal
    taxes: tuple[TaxLine, ...]
    tax_amount: Decimal
    tax_rate: Decimal  # percent: 18 or 0
    total: Decimal
    sale_slug: str | None  # the sale that was open when priced, if any
    sale_savings: Decimal  # informational: already inside subtotal
    coupon_verdict: CouponVerdict | None  # None when no coupon was given


def price_lines(
    lines: Sequence[LineToPrice], rate: ExchangeRate, sale: Sale | None, now: datetime
) -> tuple[PricedLine, ...]:
    """Step 1: the sale per INR unit price, then conversion per unit."""
    priced = []
    for line in lines:
        unit_inr = sale_unit_price(sale, line.internship_id, line.unit_price_inr, now)
        priced.append(
            PricedLine(
                internship_id=line.internship_id,
                plan_id=line.plan_id,
                quantity=line.quantity,
                list_unit_price=convert_from_inr(line.unit_price_inr, rate),
                unit_price=convert_from_inr(unit_inr, rate),
                unit_price_inr=unit_inr,
            )
        )
    return tuple(priced)


def price_cart(
    lines: Sequence[LineToPrice],
    rate: ExchangeRate,
    *,
    now: datetime,
    sale: Sale | None = None,
    coupon: Coupon | None = None,
    user_redemptions: int = 0,
    billing: Billing | None = None,
    seller_state: str = DEFAULT_SELLER_STATE,
) -> PriceBreakdown:
    """Price a cart. A coupon that does not apply is left out and explained in `coupon_verdict`."""
    priced = price_lines(lines, rate, sale, now)
    subtotal = sum((line.line_total for line in priced), ZERO)
    verdict = None if coupon is None else check_coupon(coupon, priced, now, user_redemptions, rate)
    discounts: tuple[DiscountLine, ...] = ()
    if coupon is not None and verdict is not None and verdict.applicable:
        discounts = (DiscountLine(coupon.code, coupon.description, verdict.amount),)
    discount_amount = min(sum((d.amount for d in discounts), ZERO), subtotal)
    taxable = subtotal - discount_amount
    taxes = compute_taxes(taxable, billing, seller_state)
    tax_amount = sum((t.amount for t in taxes), ZERO)
    return PriceBreakdown(
        currency=rate.currency,
        exchange_rate=rate.rate,
        lines=priced,
        subtotal=subtotal,
        discounts=discounts,
        discount_amount=discount_amount,
        taxable_amount=taxable,
        taxes=taxes,
        tax_amount=tax_amount,
        tax_rate=effective_tax_rate(billing, seller_state),
        total=taxable + tax_amount,
        sale_slug=sale.slug if sale is not None and sale.is_active(now) else None,
        sale_savings=sum(((p.list_unit_price - p.unit_price) * p.quantity for p in priced), ZERO),
        coupon_verdict=verdict,
    )
