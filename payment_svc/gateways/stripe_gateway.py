"""Stripe through its official SDK (stripe 16.1, StripeClient, synchronous: run on a thread pool).

A session is a PaymentIntent created with `Idempotency-Key` = our key: Stripe replays the first
answer for the same key (24 hours), so a retry after a lost response returns the same intent.
That replay is also the recovery path; Stripe has no lookup by idempotency key, so
find_order_by_key answers None. The intent id is both the gateway order id and the payment id.
The SDK's own network retries are off: ours (gateways/resilient.py) are bounded in time.
"""

from __future__ import annotations

from typing import Any

import stripe

from payment_svc.domain.gateway_order import GatewayName
from payment_svc.gateways.base import (
    GatewayOrder,
    GatewayPayment,
    GatewayPaymentStatus,
    GatewayRefund,
    GatewayRefundStatus,
    GatewayRejected,
    GatewayUnavailable,
)
from payment_svc.gateways.blocking import BlockingRunner
from payment_svc.gateways.checkout_urls import checkout_url
from payment_svc.gateways.http_session import gateway_session
from payment_svc.tuning import GatewayTuning


class StripeGateway:
    def __init__(self, *, api_key: str, base_url: str, checkout_template: str, tuning: GatewayTuning) -> None:
        http = stripe.RequestsClient(timeout=(tuning.connect_timeout_s, tuning.read_timeout_s),
                                     session=gateway_session(tuning.threads, raise_retryable=False))
        self._client = stripe.StripeClient(api_key, base_addresses={"api": base_url.rstrip("/")},
                                           max_network_retries=0, http_client=http)
        self._base_url = base_url
        self._template = checkout_template
        self._runner = BlockingRunner("stripe", tuning.threads)

    @property
    def name(self) -> GatewayName:
        return "stripe"

    async def create_order(self, idempotency_key: str, amount_minor: int, currency: str, return_url: str,
                           description: str, *, may_exist: bool = True) -> GatewayOrder:
        del may_exist  # Stripe replays a create with the same Idempotency-Key: nothing to look up
        metadata = {"key": idempotency_key}
        if return_url:
            metadata["return_url"] = return_url
        params: dict[str, Any] = {"amount": amount_minor, "currency": currency.lower(), "metadata": metadata}
        if description:
            params["description"] = description
        intent = await self._call(self._client.v1.payment_intents.create, params,
                                  {"idempotency_key": idempotency_key})
        return GatewayOrder(
            gateway="stripe", gateway_order_id=intent.id,
            checkout_url=checkout_url(self._template, base_url=self._base_url, gateway_order_id=intent.id,
                                      return_url=return_url),
            amount_minor=int(intent.amount), currency=str(intent.currency).upper(),
        )

    async def fetch_payment(self, gateway_payment_id: str) -> GatewayPayment:
        intent = await self._call(self._client.v1.payment_intents.retrieve, gateway_payment_id)
        status = _status(intent)
        amount = int(intent.amount_received) if status == "captured" else int(intent.amount)
        return GatewayPayment(id=intent.id, order_id=intent.id, status=status, amount_minor=amount,
                              currency=str(intent.currency).upper())

    async def find_order_by_key(self, key: str) -> GatewayOrder | None:
        return None  # create_order with the same key is the lookup (Stripe replays it)

    async def fetch_order_payments(self, gateway_order_id: str) -> list[GatewayPayment]:
        """The PaymentIntent is both the order and its payment: retrieve it."""
        return [await self.fetch_payment(gateway_order_id)]

    async def create_refund(self, payment_id: str, amount_minor: int, key: str,
                            notes: dict[str, str]) -> GatewayRefund:
        """`POST /v1/refunds` of the PaymentIntent, with Stripe's Idempotency-Key = our key."""
        refund = await self._call(self._client.v1.refunds.create,
                                  {"payment_intent": payment_id, "amount": amount_minor, "metadata": dict(notes)},
                                  {"idempotency_key": key})
        return _refund(refund)

    async def fetch_refund(self, refund_id: str) -> GatewayRefund:
        return _refund(await self._call(self._client.v1.refunds.retrieve, refund_id))

    def close(self) -> None:
        self._runner.close()

    async def _call(self, method: Any, *args: Any) -> Any:
        try:
            return await self._runner.run(method, *args)
        except stripe.APIConnectionError as error:  # refused, reset, timed out
            raise GatewayUnavailable("stripe", type(error).__name__) from error
        except stripe.RateLimitError as error:
            raise GatewayUnavailable("stripe", "rate limited (429)") from error
        except stripe.StripeError as error:
            if (error.http_status or 0) >= 500 or error.http_status is None:
                raise GatewayUnavailable("stripe", f"HTTP {error.http_status}") from error
            raise GatewayRejected("stripe", error.user_message or str(error)) from error


def _status(intent: Any) -> GatewayPaymentStatus:
    if intent.status == "succeeded":
        return "captured"
    if intent.status == "canceled":
        return "failed"
    if intent.status == "requires_payment_method" and getattr(intent, "last_payment_error", None):
        return "failed"
    return "pending"


_REFUND_STATUSES: dict[str, GatewayRefundStatus] = {"succeeded": "processed", "failed": "failed", "canceled": "failed"}


def _refund(refund: Any) -> GatewayRefund:
    # pending and requires_action are not final: "pending"
    return GatewayRefund(id=refund.id, payment_id=str(getattr(refund, "payment_intent", "") or ""),
                         status=_REFUND_STATUSES.get(str(refund.status), "pending"),
                         amount_minor=int(refund.amount), currency=str(refund.currency).upper())
