"""The cart-orders consumer: an order that expired or was cancelled gives its coupon hold back.

Durable `cart-orders` on checkout.order.expired and checkout.order.cancelled (OrderEvent). Each
delivery releases the order's redemption in a unit of work of its own (ConversionService.release,
without reopening the cart: the order existed, so its cart stays converted). Idempotent: a
redelivery, or an order that never held a coupon, finds nothing to release and is acked.
"""

from __future__ import annotations

import uuid

from google.protobuf import json_format

from cart_svc.commands import ReleaseCart
from cart_svc.conversions import ConversionService
from checkout.events.v1 import events_pb2
from common.consumed import CannotHandle, ConsumedEvent
from common.consumer import Subscription

DURABLE = "cart-orders"
SUBJECTS = ("checkout.order.expired", "checkout.order.cancelled")
ACTOR = "cart_svc:cart-orders"


class OrderEndings:
    """The handler: one OrderEvent → the order's coupon hold released (if it held one)."""

    def __init__(self, conversions: ConversionService) -> None:
        self._conversions = conversions

    async def __call__(self, event: ConsumedEvent) -> bool:
        if event.subject not in SUBJECTS:
            return False  # a server without multi-subject filters (NATS < 2.10) delivers the whole stream
        try:
            order = json_format.ParseDict(dict(event.payload), events_pb2.OrderEvent(), ignore_unknown_fields=True)
            order_token = str(uuid.UUID(order.order_token))
        except (json_format.ParseError, ValueError) as error:
            raise CannotHandle(f"not an OrderEvent with an order_token: {error}") from None
        reason = event.subject.rsplit(".", 1)[-1]  # expired | cancelled
        released = await self._conversions.release(ReleaseCart(order_token, reopen_cart=False, reason=reason),
                                                   actor=ACTOR)
        return released.coupon_released


def subscription(conversions: ConversionService) -> Subscription:
    return Subscription(DURABLE, SUBJECTS, OrderEndings(conversions),
                        description="cart_svc: release the coupon hold of an expired or cancelled order")
