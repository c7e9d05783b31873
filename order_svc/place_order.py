"""Turning a cart into an order: one PostgreSQL transaction, all or nothing.

Lock the cart, check it is open and not empty, re-price it from the catalog (never trusting
anything the client sent), redeem its coupon under its limits, snapshot prices, taxes and the
exchange rate into the order, mark the cart converted, and write the outbox and audit rows.
The cart module's repository and pricing are used as a library: the cart and the order must
change in the same transaction, which a call to another process could not give.
"""

from __future__ import annotations

import dataclasses
import datetime
import uuid

from sqlalchemy.ext.asyncio import AsyncConnection

from cart_svc import cart_pricing, cart_repository, catalog_repository, redemptions
from cart_svc.domain.cart import PlanRef
from cart_svc.domain.pricing import PriceBreakdown
from cart_svc.domain.tax import Billing
from common.audit import append_audit
from common.errors import CheckoutError, ErrorCode
from common.money import format_amount
from common.outbox import add_event
from order_svc import order_repository
from order_svc.commands import OrderRequest
from order_svc.order_repository import OrderRecord

ORDER_TTL = datetime.timedelta(hours=2)


@dataclasses.dataclass(frozen=True)
class PlacedOrder:
    order: OrderRecord
    cart_version: int | None  # the converted cart's new version (for the cart cache); None if unchanged


async def place_order(conn: AsyncConnection, *, user_id: str, request: OrderRequest, now: datetime.datetime,
                      seller_state: str) -> PlacedOrder:
    """The order for `request.cart_token`; if that cart already became this user's order, that order."""
    found = await cart_repository.get_cart(conn, request.cart_token, for_update=True)
    if found is None:
        raise CheckoutError(ErrorCode.CART_NOT_FOUND)
    cart = found[0]
    if cart.user_id is not None and cart.user_id != user_id:
        raise CheckoutError(ErrorCode.NOT_ALLOWED, "this cart belongs to another user")
    if cart.status == "converted":
        existing = await order_repository.order_of_cart(conn, cart.token)
        if existing is not None and existing.user_id == user_id:
            return PlacedOrder(existing, None)  # a double submit of one cart: the first order is the answer
        raise CheckoutError(ErrorCode.CART_CONVERTED)
    cart.ensure_open(now)
    if not cart.lines:
        raise CheckoutError(ErrorCode.CART_EMPTY)

    before = {"status": cart.status, "user_id": cart.user_id}
    cart.refresh_plans(await catalog_repository.plans_by_id(conn, [line.plan.plan_id for line in cart.lines]))
    cart.user_id = user_id
    billing = Billing(request.billing_country, request.billing_state or None) if request.billing_country else None
    prices = await cart_pricing.price(conn, cart, now, seller_state, billing=billing)
    order_token = str(uuid.uuid4())
    if cart.coupon_code:
        verdict = prices.coupon_verdict
        if verdict is not None and not verdict.applicable:
            raise CheckoutError(ErrorCode.INVALID_COUPON, validation_messages=[f"code: {reason}" for reason in verdict.reasons],
                                suggested_action="remove the coupon from the cart and place the order again")
        await redemptions.redeem(conn, code=cart.coupon_code, user_id=user_id, order_token=order_token)

    plans = {line.plan.plan_id: line.plan for line in cart.lines}
    order = _snapshot(order_token, cart.token, user_id, request, prices, cart.coupon_code, plans, now)
    await order_repository.insert_order(conn, order)
    cart.status = "converted"
    cart.updated_at = now
    await cart_repository.save_cart(conn, cart, cart_pricing.totals_of(prices))
    await add_event(conn, subject="checkout.order.created", aggregate_id=order_token,
                    payload={"order_token": order_token, "user_id": user_id, "total": format_amount(order.total),
                             "currency": order.currency})
    await append_audit(conn, actor=user_id, entity_type="cart", entity_id=cart.token, action="converted",
                       before=before, after={"status": "converted", "order_token": order_token})
    await append_audit(conn, actor=user_id, entity_type="order", entity_id=order_token, action="created", before=None,
                       after={"status": order.status, "total": order.total, "currency": order.currency,
                              "discount_code": order.discount_code, "exchange_rate": order.exchange_rate})
    return PlacedOrder(order, cart.version)


def _snapshot(order_token: str, cart_token: str, user_id: str, request: OrderRequest, prices: PriceBreakdown,
              coupon_code: str | None, plans: dict[str, PlanRef], now: datetime.datetime) -> OrderRecord:
    return OrderRecord(
        order_token=order_token,
        cart_token=cart_token,
        user_id=user_id,
        status="pending",
        currency=prices.currency,
        items=[{
            "internship_id": line.internship_id, "plan_id": line.plan_id, "quantity": line.quantity,
            "title": plans[line.plan_id].title, "period_value": plans[line.plan_id].period_value,
            "period_unit": plans[line.plan_id].period_unit,
            "unit_price": format_amount(line.unit_price), "unit_price_inr": format_amount(line.unit_price_inr),
            "line_total": format_amount(line.line_total),
        } for line in prices.lines],
        subtotal=prices.subtotal,
        discount_code=coupon_code if prices.discounts else None,
        discount_amount=prices.discount_amount,
        taxes=[{"name": t.name, "rate": format(t.rate.normalize(), "f"), "amount": format_amount(t.amount)} for t in prices.taxes],
        tax_amount=prices.tax_amount,
        total=prices.total,
        exchange_rate=prices.exchange_rate,
        billing={"country": request.billing_country, "state": request.billing_state},
        payment_method=request.payment_method or None,
        payment_token=None,
        enrollment_id=None,
        expires_at=now + ORDER_TTL,
        created_at=now,
        updated_at=now,
        return_url=request.return_url,
        cancel_url=request.cancel_url,
    )
