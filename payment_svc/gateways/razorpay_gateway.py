"""Razorpay through its official SDK (razorpay 2.0.1, synchronous: run on a thread pool).

The receipt is our key ("<order token>:<attempt>"). Real Razorpay does not dedupe receipts, so
create_order first lists the orders with that receipt (`GET /v1/orders?receipt=`) and returns the
one already there; only if there is none does it create. Together with payment_svc's per-attempt
advisory lock (no two creators of one key at once) this makes a retry after a lost response find
the first order instead of making a second.
"""

from __future__ import annotations

import functools
from typing import Any

import razorpay
import razorpay.errors
import requests

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
from payment_svc.gateways.http_session import RetryableStatus, gateway_session
from payment_svc.tuning import GatewayTuning

_STATUSES: dict[str, GatewayPaymentStatus] = {"captured": "captured", "failed": "failed"}
# created, authorized (not captured yet) and refunded are not news we act on: "pending".


class _Client(razorpay.Client):  # type: ignore[misc]
    """The SDK's client, with its version read once: the SDK looks itself up in the installed
    packages' metadata (importlib.metadata, files on disk) for every request's User-Agent."""

    @functools.cached_property
    def _version(self) -> str:
        return str(super()._get_version())

    def _get_version(self) -> str:
        return self._version


class RazorpayGateway:
    def __init__(self, *, key_id: str, key_secret: str, base_url: str, checkout_template: str,
                 tuning: GatewayTuning) -> None:
        self._client = _Client(session=gateway_session(tuning.threads), auth=(key_id, key_secret),
                                       base_url=base_url.rstrip("/"))
        self._client.enable_retry(False)  # our retries (gateways/resilient.py), not the SDK's sleeping ones
        self._key_id = key_id
        self._base_url = base_url
        self._template = checkout_template
        self._timeout = (tuning.connect_timeout_s, tuning.read_timeout_s)
        self._runner = BlockingRunner("razorpay", tuning.threads)

    @property
    def name(self) -> GatewayName:
        return "razorpay"

    async def create_order(self, idempotency_key: str, amount_minor: int, currency: str, return_url: str,
                           description: str, *, may_exist: bool = True) -> GatewayOrder:
        # Razorpay does not dedupe receipts: look first whenever an earlier create may have landed.
        existing = await self._find(idempotency_key, amount_minor, currency) if may_exist else None
        if existing is not None:
            return self._order(existing, return_url)
        created = await self._call(self._client.order.create, {
            "amount": amount_minor, "currency": currency, "receipt": idempotency_key, "payment_capture": 1,
            "notes": {"key": idempotency_key, "description": description[:256]},
        })
        return self._order(created, return_url)

    async def fetch_payment(self, gateway_payment_id: str) -> GatewayPayment:
        return _payment(await self._call(self._client.payment.fetch, gateway_payment_id))

    async def fetch_order_payments(self, gateway_order_id: str) -> list[GatewayPayment]:
        """`GET /v1/orders/{id}/payments`, newest first (sorted here too: the order is not documented)."""
        listing = await self._call(self._client.order.payments, gateway_order_id)
        items = [item for item in listing.get("items", []) if isinstance(item, dict)]
        items.sort(key=lambda item: int(item.get("created_at") or 0), reverse=True)  # stable: ties keep their order
        return [_payment(item) for item in items]

    async def find_order_by_key(self, key: str) -> GatewayOrder | None:
        found = await self._find(key, None, None)
        return None if found is None else self._order(found, "")

    async def create_refund(self, payment_id: str, amount_minor: int, key: str,
                            notes: dict[str, str]) -> GatewayRefund:
        """`POST /v1/payments/{id}/refund`, `X-Refund-Idempotency: <key>` (Razorpay dedupes refunds by it)."""
        created = await self._call(functools.partial(self._client.payment.refund, headers={"X-Refund-Idempotency": key}),
                                   payment_id, {"amount": amount_minor, "receipt": key[:40], "notes": dict(notes)})
        return _refund(created)

    async def fetch_refund(self, refund_id: str) -> GatewayRefund:
        return _refund(await self._call(self._client.refund.fetch, refund_id))

    def close(self) -> None:
        self._runner.close()

    async def _find(self, receipt: str, amount_minor: int | None, currency: str | None) -> dict[str, Any] | None:
        listing = await self._call(self._client.order.all, {"receipt": receipt, "count": 10})
        for item in listing.get("items", []):
            if item.get("receipt") != receipt:
                continue
            if amount_minor is not None and (int(item["amount"]), str(item["currency"]).upper()) != (amount_minor, currency):
                continue
            return dict(item)
        return None

    def _order(self, entity: dict[str, Any], return_url: str) -> GatewayOrder:
        order_id = str(entity["id"])
        return GatewayOrder(
            gateway="razorpay", gateway_order_id=order_id,
            checkout_url=checkout_url(self._template, base_url=self._base_url, gateway_order_id=order_id,
                                      key_id=self._key_id, return_url=return_url),
            amount_minor=int(entity["amount"]), currency=str(entity["currency"]).upper(),
        )

    async def _call(self, method: Any, *args: Any) -> dict[str, Any]:
        try:
            result = await self._runner.run(method, *args, timeout=self._timeout)
        except RetryableStatus as error:
            raise GatewayUnavailable("razorpay", str(error)) from error
        except requests.exceptions.RequestException as error:  # connection, timeout, unreadable body
            raise GatewayUnavailable("razorpay", type(error).__name__) from error
        except razorpay.errors.BadRequestError as error:
            raise GatewayRejected("razorpay", str(error) or "bad request") from error
        except (razorpay.errors.GatewayError, razorpay.errors.ServerError) as error:
            # a non-5xx answer with another error code (5xx never gets here: the session hook)
            raise GatewayRejected("razorpay", str(error) or "refused") from error
        if not isinstance(result, dict):
            raise GatewayUnavailable("razorpay", "unreadable response")
        return result


def _payment(entity: dict[str, Any]) -> GatewayPayment:
    return GatewayPayment(
        id=str(entity["id"]), order_id=str(entity.get("order_id") or ""),
        status=_STATUSES.get(str(entity.get("status")), "pending"),
        amount_minor=int(entity["amount"]), currency=str(entity["currency"]).upper(),
    )


_REFUND_STATUSES: dict[str, GatewayRefundStatus] = {"processed": "processed", "failed": "failed"}


def _refund(entity: dict[str, Any]) -> GatewayRefund:
    return GatewayRefund(
        id=str(entity["id"]), payment_id=str(entity.get("payment_id") or ""),
        status=_REFUND_STATUSES.get(str(entity.get("status")), "pending"),
        amount_minor=int(entity["amount"]), currency=str(entity["currency"]).upper(),
    )
