"""Views to messages (money as 2-place strings, times as RFC 3339): checkout.v1 for clients,
checkout.internal.v1 for order_svc."""

from __future__ import annotations

from decimal import Decimal

from cart_svc.admin import RateView
from cart_svc.conversions import Released
from cart_svc.domain.cart import PlanRef
from cart_svc.domain.catalog import InternshipEntry
from cart_svc.domain.conversion import ConvertedCart, rate_text
from cart_svc.domain.coupons import Coupon
from cart_svc.domain.sales import Sale
from cart_svc.service import AuthView, CartView, DiscountCandidate, EstimateView
from checkout.internal.v1 import cart_checkout_pb2
from checkout.v1 import admin_pb2, cart_pb2, catalog_pb2, common_pb2
from common.clock import rfc3339, utc_now
from common.money import format_amount


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


def coupon_message(coupon: Coupon) -> admin_pb2.Coupon:
    return admin_pb2.Coupon(
        code=coupon.code, kind=coupon.kind, value=format_amount(coupon.value), currency=coupon.currency,
        min_subtotal=format_amount(coupon.min_subtotal), starts_at=rfc3339(coupon.starts_at),
        ends_at=rfc3339(coupon.ends_at), max_redemptions=coupon.max_redemptions,
        max_redemptions_per_user=coupon.max_redemptions_per_user, internship_ids=sorted(coupon.internship_ids),
        redeemed_count=coupon.redeemed_count, listed=coupon.listed,
    )


def rate_message(view: RateView) -> admin_pb2.ExchangeRate:
    return admin_pb2.ExchangeRate(currency=view.currency, rate=rate_text(view.rate), updated_at=rfc3339(view.updated_at))


def converted_cart_message(snapshot: ConvertedCart) -> cart_checkout_pb2.ConvertedCart:
    return cart_checkout_pb2.ConvertedCart(
        order_token=snapshot.order_token,
        cart_token=snapshot.cart_token,
        user_id=snapshot.user_id,
        currency=snapshot.currency,
        exchange_rate=rate_text(snapshot.exchange_rate),
        lines=[cart_checkout_pb2.OrderLine(
            line_no=line.line_no, internship_id=line.internship_id, plan_id=line.plan_id, title=line.title,
            period=common_pb2.Period(value=line.period_value, unit=line.period_unit), quantity=line.quantity,
            unit_price=format_amount(line.unit_price), unit_price_inr=format_amount(line.unit_price_inr),
            line_total=format_amount(line.line_total),
        ) for line in snapshot.lines],
        subtotal=format_amount(snapshot.subtotal),
        discount_code=snapshot.discount_code,
        discount_amount=format_amount(snapshot.discount_amount),
        taxes=[common_pb2.TaxLine(name=t.name, rate=percent_text(t.rate), amount=format_amount(t.amount))
               for t in snapshot.taxes],
        tax_amount=format_amount(snapshot.tax_amount),
        total=format_amount(snapshot.total),
        billing=common_pb2.Billing(country=snapshot.billing_country, state=snapshot.billing_state),
        converted_at=rfc3339(snapshot.converted_at),
    )


def released_message(released: Released) -> cart_checkout_pb2.ReleaseCartResponse:
    return cart_checkout_pb2.ReleaseCartResponse(coupon_released=released.coupon_released,
                                                 cart_reopened=released.cart_reopened)
