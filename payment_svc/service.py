"""payment_svc's use cases, the entry point of its service layer. Each returns plain views (a
PaymentRecord, an Ack), never protobuf; api.py translates.

    open_session     PaymentSessions.OpenSession (order_svc): open_session.py
    get_payment      a payment, to its owner
    verify_payment   Razorpay's browser callback
    razorpay_webhook, stripe_webhook   the gateways' webhooks: webhooks.py

Ownership is the session's own `user_id` (the order's owner, as order_svc said when it opened
the session); payment_svc reads no order. VerifyPayment requires the owner's bearer token, like
every other call of the checkout flow: the callback is posted by the student's own browser, which
holds it. Order of checks: authenticated (1101) → fields (1000) → signature (3101, nothing read or
changed) → session exists (3004) → caller owns it (1102) → the payment as the gateway reports it
(4001 if Razorpay cannot be reached) → apply_payment_outcome, one transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from common.errors import CheckoutError, ErrorCode
from common.request_context import require_user
from common.uow import UnitOfWorkFactory, reading
from common.validation import check_uuid, raise_if_any
from payment_svc.commands import OpenSessionCommand
from payment_svc.domain.callback_signature import is_valid_callback
from payment_svc.gateways.base import GatewayRejected, GatewayUnavailable
from payment_svc.gateways.registry import Gateways
from payment_svc.open_session import SessionOpener
from payment_svc.outcomes import GatewayReport, apply_payment_outcome
from payment_svc.repository import PaymentRecord, PaymentRepository
from payment_svc.webhooks import Ack, WebhookHandler

MAX_GATEWAY_ID = 255


class PaymentService:
    def __init__(self, uow: UnitOfWorkFactory, repository: PaymentRepository, gateways: Gateways,
                 opener: SessionOpener, webhooks: WebhookHandler, razorpay_key_secret: str) -> None:
        self._uow = uow
        self._repository = repository
        self._gateways = gateways
        self._opener = opener
        self._webhooks = webhooks
        self._key_secret = razorpay_key_secret

    async def open_session(self, command: OpenSessionCommand, *, caller_deadline_s: float | None = None) -> PaymentRecord:
        return await self._opener.open(command, caller_deadline_s=caller_deadline_s)

    async def razorpay_webhook(self, body: bytes, headers: Mapping[str, Sequence[str]]) -> Ack:
        return await self._webhooks.razorpay(body, headers)

    async def stripe_webhook(self, body: bytes, headers: Mapping[str, Sequence[str]]) -> Ack:
        return await self._webhooks.stripe(body, headers)

    async def get_payment(self, payment_token: str) -> PaymentRecord:
        user = require_user()
        problems: list[str] = []
        check_uuid(problems, "payment_token", payment_token)
        raise_if_any(problems)
        async with reading(self._uow) as uow:
            payment = await self._repository.by_token(uow.conn, payment_token)
        if payment is None:
            raise CheckoutError(ErrorCode.PAYMENT_NOT_FOUND)
        if payment.user_id != user.user_id:
            raise CheckoutError(ErrorCode.NOT_ALLOWED, "this payment belongs to another user's order")
        return payment

    async def verify_payment(self, order_id: str, payment_id: str, signature: str) -> PaymentRecord:
        user = require_user()
        _check_callback_fields(order_id, payment_id, signature)
        if not is_valid_callback(self._key_secret, order_id, payment_id, signature):
            raise CheckoutError(ErrorCode.WEBHOOK_SIGNATURE_INVALID, "the payment callback's signature is invalid",
                                suggested_action="send the razorpay_signature Razorpay Checkout returned, unchanged")
        async with reading(self._uow) as uow:
            session = await self._repository.by_gateway_order(uow.conn, "razorpay", order_id)
        if session is None:
            raise CheckoutError(ErrorCode.PAYMENT_NOT_FOUND, "no payment session has this Razorpay order")
        if session.user_id != user.user_id:
            raise CheckoutError(ErrorCode.NOT_ALLOWED, "this payment belongs to another user's order")
        try:
            reported = await self._gateways["razorpay"].fetch_payment(payment_id)
        except GatewayUnavailable:
            raise CheckoutError(ErrorCode.GATEWAY_UNAVAILABLE, "Razorpay could not be reached to confirm the payment") from None
        except GatewayRejected:
            raise CheckoutError(ErrorCode.PAYMENT_NOT_FOUND, "Razorpay does not know this payment") from None
        if reported.order_id != order_id:
            raise CheckoutError(ErrorCode.WEBHOOK_SIGNATURE_INVALID, "the payment belongs to another Razorpay order")
        async with self._uow() as uow:
            result = await apply_payment_outcome(
                uow, self._repository, GatewayReport("razorpay", order_id, reported.id, reported.status,
                                                     reported.amount_minor, reported.currency),
                source="callback", actor=user.user_id)
            await uow.commit()
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
