"""A cart converted into an order: the priced snapshot ConvertCart answers and keeps.

The snapshot is frozen at conversion (prices, sale, coupon, exchange rate and tax as they stood
then) and stored as JSON beside the conversion, so a repeat of ConvertCart for the same order,
or a double submit of the same cart, answers exactly the same figures. Every amount is kept as
its 2-place string, the rate as its exact decimal text.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from cart_svc.domain.cart import Cart
from cart_svc.domain.pricing import PriceBreakdown
from cart_svc.domain.tax import Billing, TaxLine
from common.money import format_amount


@dataclasses.dataclass(frozen=True)
class ConvertedLine:
    line_no: int  # 1, 2, … in cart order
    internship_id: str
    plan_id: str
    title: str
    period_value: int
    period_unit: str
    quantity: int
    unit_price: Decimal  # in the order's currency, after the sale
    unit_price_inr: Decimal  # INR after the sale (the catalog's list price when no sale runs)
    line_total: Decimal


@dataclasses.dataclass(frozen=True)
class ConvertedCart:
    order_token: str
    cart_token: str
    user_id: str
    currency: str
    exchange_rate: Decimal  # units of `currency` per 1 INR
    lines: tuple[ConvertedLine, ...]
    subtotal: Decimal
    discount_code: str  # empty unless a coupon discounted the cart
    discount_amount: Decimal
    taxes: tuple[TaxLine, ...]
    tax_amount: Decimal
    total: Decimal
    billing_country: str
    billing_state: str
    converted_at: datetime.datetime


def convert(cart: Cart, prices: PriceBreakdown, *, order_token: str, user_id: str, billing: Billing | None,
            now: datetime.datetime) -> ConvertedCart:
    """The snapshot of `cart` priced as `prices` (priced from the catalog just now) for the order."""
    plans = {line.plan.plan_id: line.plan for line in cart.lines}
    lines = tuple(
        ConvertedLine(
            line_no=number, internship_id=priced.internship_id, plan_id=priced.plan_id,
            title=plans[priced.plan_id].title, period_value=plans[priced.plan_id].period_value,
            period_unit=plans[priced.plan_id].period_unit, quantity=priced.quantity, unit_price=priced.unit_price,
            unit_price_inr=priced.unit_price_inr, line_total=priced.line_total,
        )
        for number, priced in enumerate(prices.lines, start=1)
    )
    return ConvertedCart(
        order_token=order_token, cart_token=cart.token, user_id=user_id, currency=prices.currency,
        exchange_rate=prices.exchange_rate, lines=lines, subtotal=prices.subtotal,
        discount_code=(cart.coupon_code or "") if prices.discounts else "", discount_amount=prices.discount_amount,
        taxes=prices.taxes, tax_amount=prices.tax_amount, total=prices.total,
        billing_country=billing.country if billing else "", billing_state=(billing.state or "") if billing else "",
        converted_at=now,
    )


def rate_text(rate: Decimal) -> str:
    """'1' for INR, otherwise the rate without trailing zeros ('0.012')."""
    return format(rate.normalize(), "f")


def to_json(snapshot: ConvertedCart) -> dict[str, Any]:
    return {
        "order_token": snapshot.order_token, "cart_token": snapshot.cart_token, "user_id": snapshot.user_id,
        "currency": snapshot.currency, "exchange_rate": rate_text(snapshot.exchange_rate),
        "lines": [{
            "line_no": line.line_no, "internship_id": line.internship_id, "plan_id": line.plan_id,
            "title": line.title, "period_value": line.period_value, "period_unit": line.period_unit,
            "quantity": line.quantity, "unit_price": format_amount(line.unit_price),
            "unit_price_inr": format_amount(line.unit_price_inr), "line_total": format_amount(line.line_total),
        } for line in snapshot.lines],
        "subtotal": format_amount(snapshot.subtotal), "discount_code": snapshot.discount_code,
        "discount_amount": format_amount(snapshot.discount_amount),
        "taxes": [{"name": tax.name, "rate": rate_text(tax.rate), "amount": format_amount(tax.amount)}
                  for tax in snapshot.taxes],
        "tax_amount": format_amount(snapshot.tax_amount), "total": format_amount(snapshot.total),
        "billing": {"country": snapshot.billing_country, "state": snapshot.billing_state},
        "converted_at": snapshot.converted_at.astimezone(datetime.UTC).isoformat(),
    }


def from_json(data: Mapping[str, Any]) -> ConvertedCart:
    lines: Sequence[Mapping[str, Any]] = data["lines"]
    return ConvertedCart(
        order_token=data["order_token"], cart_token=data["cart_token"], user_id=data["user_id"],
        currency=data["currency"], exchange_rate=Decimal(data["exchange_rate"]),
        lines=tuple(ConvertedLine(
            line_no=line["line_no"], internship_id=line["internship_id"], plan_id=line["plan_id"],
            title=line["title"], period_value=line["period_value"], period_unit=line["period_unit"],
            quantity=line["quantity"], unit_price=Decimal(line["unit_price"]),
            unit_price_inr=Decimal(line["unit_price_inr"]), line_total=Decimal(line["line_total"]),
        ) for line in lines),
        subtotal=Decimal(data["subtotal"]), discount_code=data["discount_code"],
        discount_amount=Decimal(data["discount_amount"]),
        taxes=tuple(TaxLine(tax["name"], Decimal(tax["rate"]), Decimal(tax["amount"])) for tax in data["taxes"]),
        tax_amount=Decimal(data["tax_amount"]), total=Decimal(data["total"]),
        billing_country=data["billing"]["country"], billing_state=data["billing"]["state"],
        converted_at=datetime.datetime.fromisoformat(data["converted_at"]),
    )
