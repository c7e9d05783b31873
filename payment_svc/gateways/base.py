"""The one interface every payment gateway adapter offers, and what it returns.

Amounts are integer minor units (paise, cents), currencies upper-case ISO 4217. Adapters are
async all the way (httpx; no thread pool) and make one attempt per call and classify every failure as GatewayUnavailable (worth retrying elsewhere or
later: connection error, timeout, 5xx, 429) or GatewayRejected (the gateway answered and said no:
4xx). Retries, time budgets and the circuit breaker live in gateways/resilient.py, around them.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Literal, Protocol

from payment_svc.domain.gateway_order import GatewayName

GatewayPaymentStatus = Literal["captured", "failed", "pending"]
GatewayRefundStatus = Literal["processed", "failed", "pending"]


@dataclasses.dataclass(frozen=True)
class CheckoutRequest:
    """What a gateway needs to open one attempt's checkout. Built once per OpenSession call from the
    attempt's stored row, so a retry with the same key sends the very same parameters (Stripe
    refuses an Idempotency-Key reused with other parameters)."""

    key: str  # "<order token>:<attempt>": Razorpay's receipt, Stripe's Idempotency-Key
    payment_token: str  # our session: Stripe's client_reference_id, in both gateways' notes/metadata
    order_token: str
    amount_minor: int
    currency: str
    description: str
    expires_at: datetime.datetime  # when our session ends (Stripe's own bounds are the adapter's business)
    created_at: datetime.datetime  # when the attempt was recorded (the first create's moment)
    return_url: str = ""
    cancel_url: str = ""
    payment_method: str = ""  # upi, card, netbanking, wallet or ""


@dataclasses.dataclass(frozen=True)
class GatewayOrder:
    gateway: GatewayName
    gateway_order_id: str
    checkout_url: str
    amount_minor: int = 0
    currency: str = ""


@dataclasses.dataclass(frozen=True)
class GatewayPayment:
    id: str
    order_id: str
    status: GatewayPaymentStatus
    amount_minor: int
    currency: str


@dataclasses.dataclass(frozen=True)
class GatewayRefund:
    id: str
    payment_id: str
    status: GatewayRefundStatus
    amount_minor: int
    currency: str


class GatewayError(Exception):
    def __init__(self, gateway: str, message: str) -> None:
        super().__init__(f"{gateway}: {message}")
        self.gateway = gateway
        self.message = message


class GatewayUnavailable(GatewayError):
    """No usable answer: connection refused or reset, timeout, 5xx, 429, or the breaker is open."""


class BreakerOpen(GatewayUnavailable):
    """Not even tried: the gateway's circuit breaker is open."""


class GatewayRejected(GatewayError):
    """The gateway answered and refused (4xx: validation, authentication, unknown id)."""


class PaymentGateway(Protocol):
    @property
    def name(self) -> GatewayName: ...

    async def create_order(self, request: CheckoutRequest, *, may_exist: bool = True) -> GatewayOrder:
        """Create the gateway order (Razorpay order, Stripe Checkout Session) for our key, or return
        the one already created for it.

        `may_exist=False` promises that no create with this key was ever sent (the caller has just
        recorded the attempt), so an adapter may skip its look-up; every retry passes True."""
        ...

    async def fetch_payment(self, gateway_payment_id: str) -> GatewayPayment:
        """The gateway's own current word on a payment (never a client's claim)."""
        ...

    async def find_order_by_key(self, key: str) -> GatewayOrder | None:
        """The order created earlier for our key, if the gateway can look it up (recovery)."""
        ...

    async def fetch_order_payments(self, gateway_order_id: str) -> list[GatewayPayment]:
        """Every payment the gateway holds for one of our gateway orders, newest first
        (reconciliation: what happened to a session whose webhook never came)."""
        ...

    async def create_refund(self, payment_id: str, amount_minor: int, key: str,
                            notes: dict[str, str]) -> GatewayRefund:
        """Refund part or all of a captured payment, once per `key` (our refund id): a retry with
        the same key answers the refund already made (Stripe's Idempotency-Key; Razorpay's receipt,
        looked up before creating, and its X-Refund-Idempotency header). `notes` travel with the
        refund and come back in its webhooks."""
        ...

    async def fetch_refund(self, refund_id: str) -> GatewayRefund:
        """The gateway's own current word on a refund (reconciliation of a pending one)."""
        ...
