"""A small async client of Razorpay's REST API (the part we use), on a pooled httpx client.

Why not the official SDK (razorpay 2.0.1): it is synchronous (requests), so every call needed a
thread, and a timed-out call could not be cancelled (the thread ran on). Its only other value,
the signature helpers, is four lines of HMAC that domain/webhook_signatures.py and
domain/callback_signature.py already hold. The REST shapes are the ones the SDK sends: Basic auth
with key id and secret, JSON bodies, errors as `{"error": {"code", "description", …}}`.

Every failure is classified here: connection errors, timeouts, 5xx, 429 and unreadable bodies →
GatewayUnavailable (worth another try); any other non-2xx → GatewayRejected.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from payment_svc.gateways.base import GatewayRejected, GatewayUnavailable
from payment_svc.gateways.http_session import gateway_client, retryable_status
from payment_svc.tuning import GatewayTuning

NAME = "razorpay"


class RazorpayClient:
    def __init__(self, *, key_id: str, key_secret: str, base_url: str, tuning: GatewayTuning) -> None:
        self._http = gateway_client(tuning, base_url=base_url.rstrip("/"), auth=httpx.BasicAuth(key_id, key_secret))

    async def create_order(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self._call("POST", "/v1/orders", json=body)

    async def orders_by_receipt(self, receipt: str, count: int = 10) -> list[dict[str, Any]]:
        return _items(await self._call("GET", "/v1/orders", params={"receipt": receipt, "count": count}))

    async def order_payments(self, order_id: str) -> list[dict[str, Any]]:
        return _items(await self._call("GET", f"/v1/orders/{_id(order_id)}/payments"))

    async def fetch_payment(self, payment_id: str) -> dict[str, Any]:
        return await self._call("GET", f"/v1/payments/{_id(payment_id)}")

    async def create_refund(self, payment_id: str, body: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        return await self._call("POST", f"/v1/payments/{_id(payment_id)}/refund", json=body,
                                headers={"X-Refund-Idempotency": idempotency_key})

    async def payment_refunds(self, payment_id: str) -> list[dict[str, Any]]:
        return _items(await self._call("GET", f"/v1/payments/{_id(payment_id)}/refunds", params={"count": 100}))

    async def fetch_refund(self, refund_id: str) -> dict[str, Any]:
        return await self._call("GET", f"/v1/refunds/{_id(refund_id)}")

    async def close(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, **options: Any) -> dict[str, Any]:
        try:
            response = await self._http.request(method, path, **options)
        except httpx.HTTPError as error:  # refused, reset, timed out, protocol error
            raise GatewayUnavailable(NAME, type(error).__name__) from error
        if retryable_status(response.status_code):
            raise GatewayUnavailable(NAME, f"HTTP {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise GatewayUnavailable(NAME, f"unreadable response (HTTP {response.status_code})")
        if response.status_code >= 400:
            raise GatewayRejected(NAME, _description(body) or f"HTTP {response.status_code}")
        return body


def _id(value: str) -> str:
    """An id in a path, whole: never a path separator or a query."""
    return quote(value, safe="")


def _items(listing: dict[str, Any]) -> list[dict[str, Any]]:
    items = listing.get("items")
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


def _description(body: dict[str, Any]) -> str:
    error = body.get("error")
    if isinstance(error, dict):
        return str(error.get("description") or error.get("code") or "")
    return ""
