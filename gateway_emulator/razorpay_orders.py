"""Validating a Razorpay order-create body the way Razorpay does (BAD_REQUEST_ERROR, 400)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Supported here: the contract's currencies and a few more Razorpay accepts.
CURRENCIES = frozenset({"INR", "USD", "EUR", "GBP", "SGD", "AED", "AUD", "CAD", "JPY"})
_ALLOWED = frozenset(
    {
        "amount",
        "currency",
        "receipt",
        "notes",
        "payment_capture",
        "partial_payment",
        "first_payment_min_amount",
        "method",
        "callback_url",  # emulator extension (real Razorpay rejects it): where the page redirects
    }
)


class OrderInvalid(Exception):
    def __init__(self, description: str, field: str | None = None) -> None:
        super().__init__(description)
        self.description = description
        self.field = field


@dataclass(frozen=True)
class OrderRequest:
    amount: int
    currency: str
    receipt: str | None
    notes: dict[str, Any]
    callback_url: str | None
    extra: dict[str, Any]


def parse_order_request(body: dict[str, Any]) -> OrderRequest:
    unknown = sorted(set(body) - _ALLOWED)
    if unknown:
        raise OrderInvalid(f"{', '.join(unknown)} is/are not required and should not be sent")
    amount = _amount(body)
    currency = _currency(body)
    if amount < 100:
        raise OrderInvalid(f"The amount must be atleast {currency} 1.00", "amount")
    receipt = body.get("receipt")
    if receipt is not None:
        if not isinstance(receipt, (str, int)):
            raise OrderInvalid("The receipt must be a string.", "receipt")
        receipt = str(receipt)
        if len(receipt) > 40:
            raise OrderInvalid("The receipt may not be greater than 40 characters.", "receipt")
    notes = _notes(body.get("notes"))
    callback_url = body.get("callback_url") or notes.get("callback_url")
    if callback_url is not None and not (
        isinstance(callback_url, str) and callback_url.startswith(("http://", "https://"))
    ):
        raise OrderInvalid("The callback url format is invalid.", "callback_url")
    extra: dict[str, Any] = {
        k: body[k] for k in ("payment_capture", "partial_payment", "method") if k in body
    }
    return OrderRequest(amount, currency, receipt or None, notes, callback_url, extra)


def _amount(body: dict[str, Any]) -> int:
    raw = body.get("amount")
    if raw is None or raw == "":
        raise OrderInvalid("The amount field is required.", "amount")
    if isinstance(raw, bool):
        raise OrderInvalid("The amount must be an integer.", "amount")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, str) and raw.isdigit():
        return int(raw)
    raise OrderInvalid("The amount must be an integer.", "amount")


def _currency(body: dict[str, Any]) -> str:
    raw = body.get("currency")
    if raw is None or raw == "":
        raise OrderInvalid("The currency field is required.", "currency")
    if not isinstance(raw, str) or raw.upper() not in CURRENCIES:
        raise OrderInvalid("Currency is not supported", "currency")
    return raw.upper()


def _notes(raw: Any) -> dict[str, Any]:
    if raw is None or raw == [] or raw == "":
        return {}
    if not isinstance(raw, dict):
        raise OrderInvalid("The notes must be an array.", "notes")
    if len(raw) > 15:
        raise OrderInvalid("Number of notes should be less than or equal to 15", "notes")
    for key, value in raw.items():
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise OrderInvalid(f"notes.{key} must be a string or a number", "notes")
        if len(str(value)) > 256:
            raise OrderInvalid(f"notes.{key} may not be greater than 256 characters.", "notes")
    return dict(raw)
