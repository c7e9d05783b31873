"""Razorpay through our own async REST client (gateways/razorpay_client.py): orders for Standard
Checkout, payments, refunds.

The receipt is our key ("<order token>:<attempt>"). Real Razorpay does not dedupe receipts, so
create_order first lists the orders with that receipt (`GET /v1/orders?receipt=`) and returns the
one already there; only if there is none does it create. Together with payment_svc's per-attempt
advisory lock (no two creators of one key at once) this makes a retry after a lost response find
the first order instead of making a second.

The browser pays on our own page, which opens Razorpay Checkout (checkout.js) with the order id and
the key id; the order's notes carry our payment token and the chosen method (Checkout's `method`
prefill), and the checkout URL is our page's (RAZORPAY_CHECKOUT_URL).
"""

from __future__ import annotations

from typing import Any

from payment_svc.domain.gateway_order import GatewayName
from payment_svc.gateways.base import (
    CheckoutRequest,
    GatewayOrder,
    GatewayPayment,
    GatewayPaymentStatus,
    GatewayRefund,
    GatewayRefundStatus,
)
from payment_svc.gateways.checkout_urls import checkout_url
from payment_svc.gateways.razorpay_client import RazorpayClient
from payment_svc.tuning import GatewayTuning

_STATUSES: dict[str, GatewayPaymentStatus] = {"captured": "captured", "failed": "failed"}
# created, authorized (not captured yet) and refunded are not news we act on: "pending".
_REFUND_STATUSES: dict[str, GatewayRefundStatus] = {"processed": "processed", "failed": "failed"}
MAX_NOTE = 256  # Razorpay's limit on a note's value
MAX_RECEIPT = 40


class RazorpayGateway:
    def __init__(self, *, key_id: str, key_secret: str, base_url: str, checkout_template: str,
                 tuning: GatewayTuning) -> None:
        self._client = RazorpayClient(key_id=key_id, key_secret=key_secret, base_url=base_url, tuning=tuning)
        self._key_id = key_id
        self._base_url = base_url
        self._template = checkout_template

    @property
    def name(self) -> GatewayName:
        return "razorpay"

    @property
    def client(self) -> RazorpayClient:
        return self._client

    async def create_order(self, request: CheckoutRequest, *, may_exist: bool = True) -> GatewayOrder:
        # Razorpay does not dedupe receipts: look first whenever an earlier create may have landed.
        existing = await self._find(request.key, request.amount_minor, request.currency) if may_exist else None
        if existing is not None:
            return self._order(existing, request)
        notes = {"key": request.key, "payment_token": request.payment_token, "order_token": request.order_token,
                 "description": request.description[:MAX_NOTE]}
        if request.payment_method:
            notes["method"] = request.payment_method
        created = await self._client.create_order({
            "amount": request.amount_minor, "currency": request.currency, "receipt": request.key,
            "payment_capture": 1, "notes": notes,
        })
        return self._order(created, request)

    async def fetch_payment(self, gateway_payment_id: str) -> GatewayPayment:
        return _payment(await self._client.fetch_payment(gateway_payment_id))

    async def fetch_order_payments(self, gateway_order_id: str) -> list[GatewayPayment]:
        """`GET /v1/orders/{id}/payments`, newest first (sorted here too: the order is not documented)."""
        items = await self._client.order_payments(gateway_order_id)
        items.sort(key=lambda item: int(item.get("created_at") or 0), reverse=True)  # stable: ties keep their order
        return [_payment(item) for item in items]

    async def find_order_by_key(self, key: str) -> GatewayOrder | None:
        found = await self._find(key, None, None)
        return None if found is None else self._order(found, None)

    async def create_refund(self, payment_id: str, amount_minor: int, key: str,
                            notes: dict[str, str]) -> GatewayRefund:
        """`POST /v1/payments/{id}/refund` with `X-Refund-Idempotency: <key>` (Razorpay answers a
        repeat with the refund already made) and the key as receipt."""
        created = await self._client.create_refund(payment_id, {
            "amount": amount_minor, "speed": "normal", "receipt": key[:MAX_RECEIPT],
            "notes": {name: value[:MAX_NOTE] for name, value in notes.items()},
        }, key)
        return _refund(created)

    async def fetch_refund(self, refund_id: str) -> GatewayRefund:
        return _refund(await self._client.fetch_refund(refund_id))

    async def close(self) -> None:
        await self._client.close()

    async def _find(self, receipt: str, amount_minor: int | None, currency: str | None) -> dict[str, Any] | None:
        for item in await self._client.orders_by_receipt(receipt):
            if item.get("receipt") != receipt:
                continue
            if amount_minor is not None and (int(item["amount"]), str(item["currency"]).upper()) != (amount_minor, currency):
                continue
            return item
        return None

    def _order(self, entity: dict[str, Any], request: CheckoutRequest | None) -> GatewayOrder:
        order_id = str(entity["id"])
        return GatewayOrder(
            gateway="razorpay", gateway_order_id=order_id,
            checkout_url=checkout_url(self._template, base_url=self._base_url, gateway_order_id=order_id,
                                      key_id=self._key_id, payment_token=request.payment_token if request else "",
                                      return_url=request.return_url if request else ""),
            amount_minor=int(entity["amount"]), currency=str(entity["currency"]).upper(),
        )


def _payment(entity: dict[str, Any]) -> GatewayPayment:
    return GatewayPayment(
        id=str(entity["id"]), order_id=str(entity.get("order_id") or ""),
        status=_STATUSES.get(str(entity.get("status")), "pending"),
        amount_minor=int(entity["amount"]), currency=str(entity["currency"]).upper(),
    )


def _refund(entity: dict[str, Any]) -> GatewayRefund:
    return GatewayRefund(
        id=str(entity["id"]), payment_id=str(entity.get("payment_id") or ""),
        status=_REFUND_STATUSES.get(str(entity.get("status")), "pending"),
        amount_minor=int(entity["amount"]), currency=str(entity["currency"]).upper(),
    )
