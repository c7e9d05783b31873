"""The events cart_svc publishes (docs/EVENTS.md "Subjects"): CartEvent payloads, built from a cart."""

from __future__ import annotations

import datetime
from decimal import Decimal

from cart_svc.domain.cart import Cart
from checkout.events.v1 import events_pb2
from common.clock import rfc3339
from common.money import format_amount

CREATED = "checkout.cart.created"
CONVERTED = "checkout.cart.converted"
REOPENED = "checkout.cart.reopened"
ABANDONED = "checkout.cart.abandoned"
CATALOG_CHANGED = "checkout.catalog.changed"


def catalog_changed(kind: str, entity_id: str, now: datetime.datetime) -> events_pb2.CatalogChanged:
    return events_pb2.CatalogChanged(kind=kind, id=entity_id, occurred_at=rfc3339(now))


def cart_event(cart: Cart, total: Decimal, now: datetime.datetime, *, order_token: str = "",
               with_updated_at: bool = False) -> events_pb2.CartEvent:
    """`total` in the cart's currency, as priced by the change that raised the event."""
    return events_pb2.CartEvent(
        cart_token=cart.token,
        user_id=cart.user_id or "",
        status=cart.status,
        order_token=order_token,
        currency=cart.currency,
        total=format_amount(total),
        items=[events_pb2.CartEventItem(internship_id=line.plan.internship_id, plan_id=line.plan.plan_id,
                                        title=line.plan.title, quantity=line.quantity) for line in cart.lines],
        occurred_at=rfc3339(now),
        updated_at=rfc3339(cart.updated_at) if with_updated_at else "",
    )
