"""PaymentService use cases: read a payment (owner only) and Razorpay's browser callback.

VerifyPayment requires the bearer token of the order's owner, like every other call of the
checkout flow: the callback is posted by the student's own browser, which holds the token. Order
of checks: authenticated (1101) → fields (1000) → signature (3101, nothing read or changed) →
session exists (3004) → caller owns its order (1102) → the payment as the gateway reports it
(4001 if Razorpay cannot be reached) → apply_payment_outcome, one transaction.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from cart_svc.validation import check_uuid, raise_if_any
from common.errors import CheckoutError, ErrorCode
from common.request_context import require_user
from payment_svc import payment_repository
from payment_svc.domain.callback_signature import is_valid_callback
from payment_svc.gateways.base import GatewayRejected, GatewayUnavailable
from payment_svc.gateways.registry import Gateways
from payment_svc.outcomes import apply_payment_outcome
from payment_svc.payment_repository import PaymentRecord

MAX_GATEWAY_ID = 255


class PaymentService:
    def __init__(self, engine: AsyncEngine, gateways: Gateways, razorpay_key_secret: str) -> None:
        self._engine = engine
        self._gateways = gateways
        self._key_secret = razorpay_key_secret

    async def get_payment(self, payment_token: str) -> PaymentRecord:
        user = require_user()
        problems: list[str] = []
        check_uuid(problems, "payment_token", payment_token)
        raise_if_any(problems)
        async with self._engine.connect() as conn:
            payment = await payment_repository.by_token(conn, payment_token)
            owner = None if payment is None else await payment_repository.owner_of(conn, payment.order_token)
        if payment is None:
            raise CheckoutError(ErrorCode.PAYMENT_NOT_FOUND)
        if owner != user.user_id:
            raise CheckoutError(ErrorCode.NOT_ALLOWED, "this payment belongs to another user's order")
        return payment

    async def verify_payment(self, order_id: str, payment_id: str, signature: str) -> PaymentRecord:
        user = require_user()
        _check_callback_fields(order_id, payment_id, signature)
        if not is_valid_callback(self._key_secret, order_id, payment_id, signature):
            raise CheckoutError(ErrorCode.WEBHOOK_SIGNATURE_INVALID, "the payment callback's signature is invalid",
                                suggested_action="send the razorpay_signature Razorpay Checkout returned, unchanged")
        async with self._engine.connect() as conn:
            session = await payment_repository.by_gateway_order(conn, "razorpay", order_id)
            owner = None if session is None else await payment_repository.owner_of(conn, session.order_token)
        if session is None:
            raise CheckoutError(ErrorCode.PAYMENT_NOT_FOUND, "no payment session has this Razorpay order")
        if owner != user.user_id:
            raise CheckoutError(ErrorCode.NOT_ALLOWED, "this payment belongs to another user's order")
        try:
            reported = await self._gateways["razorpay"].fetch_payment(payment_id)
        except GatewayUnavailable:
            raise CheckoutError(ErrorCode.GATEWAY_UNAVAILABLE, "Razorpay could not be reached to confirm the payment") from None
        except GatewayRejected:
            raise CheckoutError(ErrorCode.PAYMENT_NOT_FOUND, "Razorpay does not know this payment") from None
        if reported.order_id != order_id:
            raise CheckoutError(ErrorCode.WEBHOOK_SIGNATURE_INVALID, "the payment belongs to another Razorpay order")
        async with self._engine.connect() as conn:
            async with conn.begin():
                result = await apply_payment_outcome(
                    conn, gateway="razorpay", gateway_order_id=order_id, gateway_payment_id=reported.id,
                    status=reported.status, amount_minor=reported.amount_minor, currency=reported.currency,
                    source="callback", actor=user.user_id)
        assert result.payment is not None
        return result.payment


def _check_callback_fields(order_id: str, payment_id: str, signature: str) -> None:
    problems: list[str] = []
    for field, value in (("razorpay_order_id", order_id), ("razorpay_payment_id", payment_id),
                         ("razorpay_signature", signature)):
        if not value:
            problems.append(f"{field}: required")
        elif len(value) > MAX_GATEWAY_ID or not value.isascii() or not value.isprintable():
            problems.append(f"{field}: at most {MAX_GATEWAY_ID} printable ASCII characters")
    raise_if_any(problems)
