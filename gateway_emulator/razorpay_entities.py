"""Razorpay's JSON shapes: the order and payment entities, collections and error bodies."""

from __future__ import annotations

from typing import Any

from .store import RazorpayOrder, RazorpayPayment

# Razorpay is a PHP service: an empty `notes` comes back as [] rather than {}.
_EMPTY_NOTES: list[Any] = []


def order_entity(order: RazorpayOrder) -> dict[str, Any]:
    return {
        "id": order.id,
        "entity": "order",
        "amount": order.amount,
        "amount_paid": order.amount_paid,
        "amount_due": max(order.amount - order.amount_paid, 0),
        "currency": order.currency,
        "receipt": order.receipt,
        "offer_id": None,
        "status": order.status,
        "attempts": order.attempts,
        "notes": dict(order.notes) if order.notes else list(_EMPTY_NOTES),
        "created_at": order.created_at,
    }


def payment_entity(payment: RazorpayPayment) -> dict[str, Any]:
    captured = payment.captured
    fee = round(payment.amount * 0.0236) if captured else None  # 2% + 18% GST on it
    tax = round(payment.amount * 0.0036) if captured else None
    return {
        "id": payment.id,
        "entity": "payment",
        "amount": payment.amount,
        "currency": payment.currency,
        "status": payment.status,
        "order_id": payment.order_id,
        "invoice_id": None,
        "international": payment.currency != "INR",
        "method": payment.method,
        "amount_refunded": 0,
        "refund_status": None,
        "captured": captured,
        "description": None,
        "card_id": "card_EmulatorCard01" if payment.method == "card" else None,
        "bank": "HDFC" if payment.method == "netbanking" else None,
        "wallet": "freecharge" if payment.method == "wallet" else None,
        "vpa": "success@razorpay" if payment.method == "upi" else None,
        "email": "void@razorpay.com",
        "contact": "+919000090000",
        "notes": list(_EMPTY_NOTES),
        "fee": fee,
        "tax": tax,
        "error_code": payment.error_code,
        "error_description": payment.error_description,
        "error_source": payment.error_source,
        "error_step": payment.error_step,
        "error_reason": payment.error_reason,
        "acquirer_data": {"auth_code": "123456"} if captured else {},
        "created_at": payment.created_at,
    }


def collection(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"entity": "collection", "count": len(items), "items": items}


def error_body(
    code: str,
    description: str,
    *,
    field: str | None = None,
    source: str = "NA",
    step: str = "NA",
    reason: str = "NA",
) -> dict[str, Any]:
    error: dict[str, Any] = {
        "code": code,
        "description": description,
        "source": source,
        "step": step,
        "reason": reason,
        "metadata": {},
    }
    if field is not None:
        error["field"] = field
    return {"error": error}


def validation_error(description: str, field: str | None = None) -> dict[str, Any]:
    return error_body(
        "BAD_REQUEST_ERROR",
        description,
        field=field,
        source="business",
        step="payment_initiation",
        reason="input_validation_failed",
    )


def server_error(status: int) -> dict[str, Any]:
    """Injected 5xx: 502 as GATEWAY_ERROR (the SDK raises GatewayError), others as SERVER_ERROR
    (ServerError)."""
    if status == 502:
        return error_body("GATEWAY_ERROR", "The gateway did not respond in time. Please try again.")
    if status == 503:
        return error_body("SERVER_ERROR", "Service unavailable. Please try again later.")
    return error_body(
        "SERVER_ERROR", "The server encountered an error. The incident has been reported to admins."
    )
