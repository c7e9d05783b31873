"""Payment records to checkout.v1 messages."""

from __future__ import annotations

from checkout.v1 import order_pb2, payment_pb2
from common.clock import rfc3339
from common.money import format_amount
from payment_svc.payment_repository import PaymentRecord


def session_message(session: PaymentRecord) -> order_pb2.PaymentSession:
    return order_pb2.PaymentSession(
        payment_token=session.token, gateway=session.gateway, gateway_order_id=session.gateway_order_id or "",
        checkout_url=session.checkout_url or "", status=session.status, amount=format_amount(session.amount),
        currency=session.currency, expires_at=rfc3339(session.expires_at), order_token=session.order_token,
    )


def payment_message(payment: PaymentRecord) -> payment_pb2.Payment:
    return payment_pb2.Payment(
        payment_token=payment.token, order_token=payment.order_token, status=payment.status,
        gateway=payment.gateway, gateway_order_id=payment.gateway_order_id or "",
        gateway_payment_id=payment.gateway_payment_id or "", amount=format_amount(payment.amount),
        currency=payment.currency, checkout_url=payment.checkout_url or "", expires_at=rfc3339(payment.expires_at),
        created_at=rfc3339(payment.created_at), updated_at=rfc3339(payment.updated_at),
    )
