"""Domain views to checkout.v1 messages (money as 2-place strings, times as RFC 3339)."""

from __future__ import annotations

from decimal import Decimal

from cart_svc.cart_service import AuthView, CartView, DiscountCandidate, EstimateView
from cart_svc.catalog_repository import InternshipEntry
from cart_svc.domain.cart import PlanRef
from cart_svc.domain.sales import Sale
from checkout.v1 import cart_pb2, catalog_pb2, common_pb2
from common.clock import rfc3339, utc_now
from common.money import format_amount


def rate_text(rate: Decimal) -> str:
    """'1' for INR, otherwise the stored rate without trailing zeros ('0.012')."""
    text = format(rate.normalize(), "f")
    return text


def percent_text(rate: Decimal) -> str:
    return format(rate.normalize(), "f")


def cart_message(view: CartView) -> cart_pb2.Cart:
    cart, prices = view.cart, view.prices
    priced = {line.plan_id: line for line in prices.lines}
    return cart_pb2.Cart(
        token=cart.token,
        user_id=cart.user_id or "",
        status=view.status,
        items=[
            cart_pb2.CartItem(
                item_id=line.item_id,
                internship_id=line.plan.internship_id,
                plan_id=line.plan.plan_id,
                title=line.plan.title,
                price=format_amount(priced[line.plan.plan_id].unit_price),
                quantity=line.quantity,
                period=common_pb2.Period(value=line.plan.period_value, unit=line.plan.period_unit),
            )
            for line in cart.lines
        ],
        currency=prices.currency,
        subtotal=format_amount(prices.subtotal),
        discount_code=cart.coupon_code or "",
        discount_amount=format_amount(prices.discount_amount),
        tax_rate=percent_text(prices.tax_rate),
        tax_amount=format_amount(prices.tax_amount),
        total=format_amount(prices.total),
        expires_at=rfc3339(cart.expires_at),
        device_id=cart.device_id or "",
        created_at=rfc3339(cart.created_at),
        updated_at=rfc3339(cart.updated_at),
        sale_slug=cart.sale_slug or "",
    )


def estimate_message(view: EstimateView) -> cart_pb2.Estimate:
    prices = view.prices
    return cart_pb2.Estimate(
        cart_token=view.cart_token,
        currency=prices.currency,
        subtotal=format_amount(prices.subtotal),
        discount_amount=format_amount(prices.discount_amount),
        discounts=[cart_pb2.DiscountLine(code=d.code, description=d.description, amount=format_amount(d.amount)) for d in prices.discounts],
        taxable_amount=format_amount(prices.taxable_amount),
        taxes=[common_pb2.TaxLine(name=t.name, rate=percent_text(t.rate), amount=format_amount(t.amount)) for t in prices.taxes],
        tax_amount=format_amount(prices.tax_amount),
        total=format_amount(prices.total),
        exchange_rate=rate_text(prices.exchange_rate),
        expires_at=rfc3339(view.expires_at),
    )


def auth_message(view: AuthView) -> cart_pb2.CartAuthStatus:
    return cart_pb2.CartAuthStatus(authenticated=view.authenticated, user_id=view.user_id, owns_cart=view.owns_cart, cart_token=view.cart_token)


def discounts_message(candidates: list[DiscountCandidate]) -> cart_pb2.ListDiscountsResponse:
    return cart_pb2.ListDiscountsResponse(discounts=[
        cart_pb2.DiscountCandidate(code=c.code, description=c.description, applicable=c.applicable, reason=c.reason)
        for c in candidates
    ])


def plan_message(plan: PlanRef) -> catalog_pb2.Plan:
    return catalog_pb2.Plan(plan_id=plan.plan_id, period=common_pb2.Period(value=plan.period_value, unit=plan.period_unit),
                            price=format_amount(plan.list_price), currency="INR")


def internship_message(entry: InternshipEntry) -> catalog_pb2.Internship:
    return catalog_pb2.Internship(internship_id=entry.internship_id, title=entry.title, description=entry.description,
                                  plans=[plan_message(plan) for plan in entry.plans])


def sale_message(sale: Sale) -> catalog_pb2.Sale:
    return catalog_pb2.Sale(
        sale_slug=sale.slug, kind=sale.kind, value=format_amount(sale.value), internship_ids=sorted(sale.internship_ids),
        starts_at=rfc3339(sale.starts_at), ends_at=rfc3339(sale.ends_at), active=sale.is_active(utc_now()),
        currency="INR",
    )
