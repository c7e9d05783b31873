"""What the emulated gateways remember, in memory: Razorpay orders and payments, Stripe
PaymentIntents, Checkout Sessions and the Stripe idempotency-key cache. Lost on restart, as a sandbox is wiped."""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass
class RazorpayPayment:
    id: str
    order_id: str
    amount: int
    currency: str
    status: str  # "captured" | "failed"
    method: str
    created_at: int
    error_code: str | None = None
    error_description: str | None = None
    error_source: str | None = None
    error_step: str | None = None
    error_reason: str | None = None

    @property
    def captured(self) -> bool:
        return self.status == "captured"


@dataclasses.dataclass
class RazorpayOrder:
    id: str
    amount: int
    currency: str
    receipt: str | None
    notes: dict[str, Any]
    created_at: int
    callback_url: str | None = None
    status: str = "created"  # created → attempted (a payment failed) → paid
    attempts: int = 0
    amount_paid: int = 0
    payment_ids: list[str] = dataclasses.field(default_factory=list)
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)  # payment_capture, …


@dataclasses.dataclass
class StripeCharge:
    id: str
    status: str  # "succeeded" | "failed"
    payment_method_id: str
    created: int


@dataclasses.dataclass
class PaymentIntent:
    id: str
    amount: int
    currency: str  # lower case, as Stripe answers
    metadata: dict[str, str]
    created: int
    client_secret: str
    description: str | None = None
    receipt_email: str | None = None
    payment_method_types: list[str] = dataclasses.field(default_factory=lambda: ["card"])
    capture_method: str = "automatic"
    status: str = "requires_payment_method"  # → succeeded; back here after a failed attempt
    amount_received: int = 0
    return_url: str | None = None
    charges: list[StripeCharge] = dataclasses.field(default_factory=list)
    last_payment_error: dict[str, Any] | None = None
    request_id: str | None = None
    idempotency_key: str | None = None


@dataclasses.dataclass
class CheckoutSession:
    """A Stripe Checkout Session (mode payment): open → complete (paid) or expired. Its
    PaymentIntent is made on the first Pay or Fail, as Stripe makes it when the customer pays."""

    id: str
    amount_total: int
    currency: str  # lower case
    line_items: list[dict[str, Any]]
    success_url: str
    cancel_url: str | None
    client_reference_id: str | None
    metadata: dict[str, str]
    intent_metadata: dict[str, str]
    intent_description: str | None
    payment_method_types: list[str]
    created: int
    expires_at: int
    status: str = "open"  # open | complete | expired
    payment_status: str = "unpaid"  # unpaid | paid
    payment_intent: str | None = None
    request_id: str | None = None
    idempotency_key: str | None = None


@dataclasses.dataclass(frozen=True)
class IdempotentResult:
    method: str
    path: str
    fingerprint: tuple[tuple[str, str], ...]
    status: int
    body: bytes


@dataclasses.dataclass
class Store:
    razorpay_orders: dict[str, RazorpayOrder] = dataclasses.field(default_factory=dict)
    razorpay_receipts: dict[str, str] = dataclasses.field(default_factory=dict)
    razorpay_payments: dict[str, RazorpayPayment] = dataclasses.field(default_factory=dict)
    payment_intents: dict[str, PaymentIntent] = dataclasses.field(default_factory=dict)
    checkout_sessions: dict[str, CheckoutSession] = dataclasses.field(default_factory=dict)
    stripe_idempotency: dict[tuple[str, str], IdempotentResult] = dataclasses.field(
        default_factory=dict
    )

    def clear(self) -> None:
        for value in dataclasses.asdict(self):
            getattr(self, value).clear()
