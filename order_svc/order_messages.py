"""Order records to checkout.v1 messages."""

from __future__ import annotations

from checkout.v1 import common_pb2, order_pb2
from common.clock import rfc3339
from common.money import format_amount
from order_svc.order_repository import OrderRecord, SessionRecord


def session_message(session: SessionRecord) -> order_pb2.PaymentSession:
    return order_pb2.PaymentSession(
        payment_token=session.token, gateway=session.gateway, gateway_order_id=session.gateway_order_id or "",
        checkout_url=session.checkout_url or "", status=session.status, amount=format_amount(session.amount),
        currency=session.currency, expires_at=rfc3339(session.expires_at), order_token=session.order_token,
    )


def order_message(order: OrderRecord, session: order_pb2.PaymentSession | None) -> order_pb2.Order:
    message = order_pb2.Order(
        order_token=order.order_token,
        cart_token=order.cart_token,
        user_id=order.user_id,
        status=order.status,
        currency=order.currency,
        subtotal=format_amount(order.subtotal),
        discount_amount=format_amount(order.discount_amount),
        tax_amount=format_amount(order.tax_amount),
        total=format_amount(order.total),
        taxes=[common_pb2.TaxLine(name=t["name"], rate=t["rate"], amount=t["amount"]) for t in order.taxes],
        created_at=rfc3339(order.created_at),
        enrollment_id=order.enrollment_id or "",
        discount_code=order.discount_code or "",
        exchange_rate=format(order.exchange_rate.normalize(), "f"),
        updated_at=rfc3339(order.updated_at),
    )
    if session is not None:
        message.payment.CopyFrom(session)
    return message
