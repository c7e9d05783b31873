"""Validating `POST /v1/payment_intents` parameters as Stripe does (400 invalid_request_error)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

CURRENCIES = frozenset({"inr", "usd", "eur", "gbp", "sgd", "aed", "aud", "cad", "jpy"})
_ZERO_DECIMAL = frozenset({"jpy"})
_ALLOWED = frozenset(
    {
        "amount",
        "currency",
        "metadata",
        "description",
        "receipt_email",
        "payment_method_types",
        "automatic_payment_methods",
        "capture_method",
        "statement_descriptor",
        "statement_descriptor_suffix",
        "expand",
        "confirm",
        "return_url",
    }
)


class IntentInvalid(Exception):
    def __init__(self, message: str, param: str | None, code: str = "parameter_invalid") -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


@dataclass(frozen=True)
class IntentRequest:
    amount: int
    currency: str
    metadata: dict[str, str]
    description: str | None
    receipt_email: str | None
    payment_method_types: list[str]
    capture_method: str


def parse_intent_request(params: dict[str, Any]) -> IntentRequest:
    for name in params:
        if name not in _ALLOWED:
            raise IntentInvalid(f"Received unknown parameter: {name}", name, "parameter_unknown")
    if str(params.get("confirm", "false")).lower() == "true":
        raise IntentInvalid(
            "confirm=true is not emulated: open the emulator's checkout page instead.", "confirm"
        )
    if "return_url" in params:
        raise IntentInvalid(
            "You can only pass return_url if confirm=true (emulator: put it in "
            "metadata[return_url] or on the checkout page's ?return_url=).",
            "return_url",
        )
    amount = _amount(params.get("amount"))
    currency = _currency(params.get("currency"))
    minimum = 50 if currency not in _ZERO_DECIMAL else 1
    if amount < minimum:
        raise IntentInvalid(
            f"Amount must be at least {minimum} in the currency's smallest unit",
            "amount",
            "amount_too_small",
        )
    capture = params.get("capture_method", "automatic")
    if capture not in ("automatic", "automatic_async", "manual"):
        raise IntentInvalid(f"Invalid capture_method: {capture}", "capture_method")
    methods = params.get("payment_method_types", ["card"])
    if not isinstance(methods, list) or not all(isinstance(m, str) for m in methods):
        raise IntentInvalid("Invalid array", "payment_method_types")
    return IntentRequest(
        amount=amount,
        currency=currency,
        metadata=_metadata(params.get("metadata")),
        description=_optional_text(params, "description"),
        receipt_email=_optional_text(params, "receipt_email"),
        payment_method_types=methods,
        capture_method=capture,
    )


def _amount(raw: Any) -> int:
    if raw is None:
        raise IntentInvalid("Missing required param: amount.", "amount", "parameter_missing")
    if not isinstance(raw, str) or not raw.lstrip("-").isdigit():
        raise IntentInvalid("Invalid integer: " + str(raw), "amount", "parameter_invalid_integer")
    return int(raw)


def _currency(raw: Any) -> str:
    if raw is None:
        raise IntentInvalid("Missing required param: currency.", "currency", "parameter_missing")
    if not isinstance(raw, str) or raw.lower() not in CURRENCIES:
        raise IntentInvalid(
            f"Invalid currency: {str(raw).lower()}. Stripe currently supports these currencies: "
            + ", ".join(sorted(CURRENCIES)),
            "currency",
        )
    return raw.lower()


def _metadata(raw: Any) -> dict[str, str]:
    if raw is None or raw == "":
        return {}
    if not isinstance(raw, dict):
        raise IntentInvalid("Invalid object", "metadata")
    if len(raw) > 50:
        raise IntentInvalid("Metadata can have at most 50 keys.", "metadata")
    for key, value in raw.items():
        if len(key) > 40:
            raise IntentInvalid("Metadata keys can be at most 40 characters.", f"metadata[{key}]")
        if not isinstance(value, str) or len(value) > 500:
            raise IntentInvalid(
                "Metadata values can be at most 500 characters.", f"metadata[{key}]"
            )
    return {k: v for k, v in raw.items() if v != ""}


def _optional_text(params: dict[str, Any], name: str) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise IntentInvalid(f"Invalid string: {value}", name)
    return value


def metadata_of(raw: Any) -> dict[str, str]:
    """`metadata[…]` checked as Stripe does (Checkout Sessions and their payment_intent_data too)."""
    return _metadata(raw)
