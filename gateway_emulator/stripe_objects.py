"""Stripe's JSON shapes: the PaymentIntent object, events and error bodies."""

from __future__ import annotations

from typing import Any

from .store import PaymentIntent


def payment_intent_object(intent: PaymentIntent) -> dict[str, Any]:
    latest = intent.charges[-1] if intent.charges else None
    return {
        "id": intent.id,
        "object": "payment_intent",
        "amount": intent.amount,
        "amount_capturable": 0,
        "amount_details": {"tip": {}},
        "amount_received": intent.amount_received,
        "application": None,
        "application_fee_amount": None,
        "automatic_payment_methods": None,
        "canceled_at": None,
        "cancellation_reason": None,
        "capture_method": intent.capture_method,
        "client_secret": intent.client_secret,
        "confirmation_method": "automatic",
        "created": intent.created,
        "currency": intent.currency,
        "customer": None,
        "description": intent.description,
        "last_payment_error": intent.last_payment_error,
        "latest_charge": latest.id if latest else None,
        "livemode": False,
        "metadata": dict(intent.metadata),
        "next_action": None,
        "on_behalf_of": None,
        "payment_method": latest.payment_method_id if latest else None,
        "payment_method_options": {},
        "payment_method_types": list(intent.payment_method_types),
        "processing": None,
        "receipt_email": intent.receipt_email,
        "review": None,
        "setup_future_usage": None,
        "shipping": None,
        "source": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": intent.status,
        "transfer_data": None,
        "transfer_group": None,
    }


def card_declined(payment_method_id: str) -> dict[str, Any]:
    return {
        "type": "card_error",
        "code": "card_declined",
        "decline_code": "generic_decline",
        "message": "Your card was declined.",
        "doc_url": "https://stripe.com/docs/error-codes/card-declined",
        "payment_method": {"id": payment_method_id, "object": "payment_method", "type": "card"},
    }


def error_body(
    message: str,
    *,
    type: str = "invalid_request_error",
    code: str | None = None,
    param: str | None = None,
) -> dict[str, Any]:
    error: dict[str, Any] = {"message": message, "type": type}
    if code is not None:
        error["code"] = code
        error["doc_url"] = f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"
    if param is not None:
        error["param"] = param
    return {"error": error}


def server_error(status: int) -> dict[str, Any]:
    return error_body(
        "An unknown error occurred" if status != 503 else "Stripe is temporarily unavailable.",
        type="api_error",
    )
