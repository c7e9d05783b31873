"""Stripe through its official SDK's native async client (stripe 16.1: StripeClient on
stripe.HTTPXClient, the `*_async` methods; no thread pool).

A session is a Stripe **Checkout Session** (mode `payment`): the browser pays on Stripe's own page,
its `url` is our checkout_url, and the Checkout Session id (cs_…) is our gateway order id. It is
created with `Idempotency-Key` = our key: Stripe replays the first answer for the same key and the
same parameters (24 hours), so a retry after a lost response returns the same session. That replay
is also the recovery path; Stripe has no lookup by idempotency key, so find_order_by_key answers
None. Every parameter is derived from the attempt's stored row (gateways/base.CheckoutRequest),
so a retry sends the very same ones.

The PaymentIntent behind a session exists only once the customer tries to pay; its id is the
payment id. Its metadata (set through `payment_intent_data`) carries our payment token, which is
how a `payment_intent.*` webhook finds its session. The SDK's own network retries are off: ours
(gateways/resilient.py) are bounded in time.
"""

from __future__ import annotations

import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import stripe

from payment_svc.domain.gateway_order import GatewayName
from payment_svc.gateways.base import (
    CheckoutRequest,
    GatewayOrder,
    GatewayPayment,
    GatewayPaymentStatus,
    GatewayRefund,
    GatewayRefundStatus,
    GatewayRejected,
    GatewayUnavailable,
)
from payment_svc.gateways.http_session import gateway_client, gateway_timeout
from payment_svc.tuning import GatewayTuning

# Stripe takes a Checkout Session's expires_at between 30 minutes and 24 hours after its creation.
# One extra minute above the floor lets a retry made soon after the first create (same parameters:
# same expires_at) still pass; our own session may end sooner (the reconciler still applies a
# payment made in that minute, and order_svc decides what it means).
MIN_LIFE = datetime.timedelta(minutes=31)
MAX_LIFE = datetime.timedelta(hours=23, minutes=59)
# What Stripe can be asked for each of our payment methods. Wallets (Apple Pay, Google Pay) ride on
# `card`; Stripe has no UPI or netbanking type to ask for, so for those (and for none) Stripe
# offers what the account has enabled (dynamic payment methods).
PAYMENT_METHOD_TYPES: dict[str, list[str]] = {"card": ["card"], "wallet": ["card"]}
_REFUND_STATUSES: dict[str, GatewayRefundStatus] = {"succeeded": "processed", "failed": "failed",
                                                    "canceled": "failed"}


class _PooledHTTPXClient(stripe.HTTPXClient):
    """The SDK's httpx client on our pooled AsyncClient (the gateway's connection limit, no
    environment proxies); async only."""

    def __init__(self, tuning: GatewayTuning) -> None:
        super().__init__(timeout=gateway_timeout(tuning))
        self._client_async = gateway_client(tuning)

    def _get_request_args_kwargs(self, method: str, url: str, headers: Any, post_data: Any) -> Any:
        """The SDK hands httpx its already form-encoded body as `data=`, which httpx deprecates (a
        warning per call): send it as `content=`, the same bytes."""
        args, kwargs = super()._get_request_args_kwargs(method, url, headers, post_data)
        body = kwargs.pop("data", None)
        if body:
            kwargs["content"] = body
        return args, kwargs


class StripeGateway:
    def __init__(self, *, api_key: str, base_url: str, page_url: str, tuning: GatewayTuning) -> None:
        self._http = _PooledHTTPXClient(tuning)
        self._client = stripe.StripeClient(api_key, base_addresses={"api": base_url.rstrip("/")},
                                           max_network_retries=0, http_client=self._http)
        self._page_url = page_url

    @property
    def name(self) -> GatewayName:
        return "stripe"

    async def create_order(self, request: CheckoutRequest, *, may_exist: bool = True) -> GatewayOrder:
        del may_exist  # Stripe replays a create with the same Idempotency-Key: nothing to look up
        params: Any = self.session_params(request)  # the SDK's TypedDict, built as a plain dict
        session = await _call(self._client.v1.checkout.sessions.create_async(params, {"idempotency_key": request.key}))
        return GatewayOrder(gateway="stripe", gateway_order_id=session.id, checkout_url=str(session.url or ""),
                            amount_minor=int(session.amount_total), currency=str(session.currency).upper())

    def session_params(self, request: CheckoutRequest) -> dict[str, Any]:
        metadata = {"key": request.key, "payment_token": request.payment_token, "order_token": request.order_token}
        if request.payment_method:
            metadata["payment_method"] = request.payment_method
        name = request.description or f"Order {request.order_token}"
        params: dict[str, Any] = {
            "mode": "payment",
            "client_reference_id": request.payment_token,
            "line_items": [{"quantity": 1, "price_data": {
                "currency": request.currency.lower(), "unit_amount": request.amount_minor,
                "product_data": {"name": name}}}],
            "success_url": with_session_id(request.return_url or self._page_url),
            "cancel_url": request.cancel_url or request.return_url or self._page_url,
            "metadata": metadata,
            "payment_intent_data": {"metadata": metadata, "description": name},
            "expires_at": stripe_expiry(request),
        }
        types = PAYMENT_METHOD_TYPES.get(request.payment_method)
        if types:
            params["payment_method_types"] = types
        return params

    async def fetch_payment(self, gateway_payment_id: str) -> GatewayPayment:
        intent = await _call(self._client.v1.payment_intents.retrieve_async(gateway_payment_id))
        return _intent_payment(intent, "")

    async def find_order_by_key(self, key: str) -> GatewayOrder | None:
        return None  # create_order with the same key is the lookup (Stripe replays it)

    async def fetch_order_payments(self, gateway_order_id: str) -> list[GatewayPayment]:
        """The Checkout Session and, once the customer tried to pay, its PaymentIntent."""
        session = await _call(self._client.v1.checkout.sessions.retrieve_async(gateway_order_id))
        intent_id = _intent_id(session.payment_intent)
        if session.status == "complete" and session.payment_status == "paid" and intent_id:
            return [GatewayPayment(id=intent_id, order_id=session.id, status="captured",
                                   amount_minor=int(session.amount_total), currency=str(session.currency).upper())]
        if intent_id:
            payment = _intent_payment(await _call(self._client.v1.payment_intents.retrieve_async(intent_id)), session.id)
            if payment.status != "pending" or session.status != "expired":
                return [payment]
        if session.status == "expired":  # nobody can pay it any more
            return [GatewayPayment(id=intent_id or session.id, order_id=session.id, status="failed",
                                   amount_minor=int(session.amount_total), currency=str(session.currency).upper())]
        return []

    async def create_refund(self, payment_id: str, amount_minor: int, key: str,
                            notes: dict[str, str]) -> GatewayRefund:
        """`POST /v1/refunds` of the PaymentIntent, with Stripe's Idempotency-Key = our key."""
        refund = await _call(self._client.v1.refunds.create_async(
            {"payment_intent": payment_id, "amount": amount_minor, "metadata": dict(notes)}, {"idempotency_key": key}))
        return _refund(refund)

    async def fetch_refund(self, refund_id: str) -> GatewayRefund:
        return _refund(await _call(self._client.v1.refunds.retrieve_async(refund_id)))

    async def close(self) -> None:
        await self._http.close_async()


async def _call(request: Any) -> Any:
    try:
        return await request
    except stripe.APIConnectionError as error:  # refused, reset, timed out
        raise GatewayUnavailable("stripe", type(error).__name__) from error
    except stripe.RateLimitError as error:
        raise GatewayUnavailable("stripe", "rate limited (429)") from error
    except stripe.StripeError as error:
        status = error.http_status
        if status is None or status >= 500 or status == 409:  # 409: the same key is being answered right now
            raise GatewayUnavailable("stripe", f"HTTP {status}") from error
        raise GatewayRejected("stripe", error.user_message or str(error)) from error


def with_session_id(url: str) -> str:
    """`url` with `session_id={CHECKOUT_SESSION_ID}` in its query, unencoded: Stripe puts the
    session's id there when it sends the browser back."""
    parts = urlsplit(url)
    extra = "session_id={CHECKOUT_SESSION_ID}"
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def stripe_expiry(request: CheckoutRequest) -> int:
    """Our session's end, within what Stripe takes (counted from when the attempt was recorded, so
    the same attempt always asks for the same moment)."""
    moment = min(max(request.expires_at, request.created_at + MIN_LIFE), request.created_at + MAX_LIFE)
    return int(moment.timestamp())


def _intent_id(value: Any) -> str:
    if isinstance(value, str):
        return value
    return str(getattr(value, "id", "") or "")


def _intent_payment(intent: Any, order_id: str) -> GatewayPayment:
    status = _status(intent)
    amount = int(intent.amount_received) if status == "captured" else int(intent.amount)
    return GatewayPayment(id=intent.id, order_id=order_id, status=status, amount_minor=amount,
                          currency=str(intent.currency).upper())


def _status(intent: Any) -> GatewayPaymentStatus:
    if intent.status == "succeeded":
        return "captured"
    if intent.status == "canceled":
        return "failed"
    if intent.status == "requires_payment_method" and getattr(intent, "last_payment_error", None):
        return "failed"
    return "pending"


def _refund(refund: Any) -> GatewayRefund:
    # pending and requires_action are not final: "pending"
    return GatewayRefund(id=refund.id, payment_id=str(getattr(refund, "payment_intent", "") or ""),
                         status=_REFUND_STATUSES.get(str(refund.status), "pending"),
                         amount_minor=int(refund.amount), currency=str(refund.currency).upper())
