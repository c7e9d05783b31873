"""What a client asks of the order service, as plain values."""

from __future__ import annotations

import dataclasses

PAYMENT_METHODS = ("upi", "card", "netbanking", "wallet")
GATEWAYS = ("razorpay", "stripe")


@dataclasses.dataclass(frozen=True)
class OrderRequest:
    cart_token: str
    billing_country: str = ""
    billing_state: str = ""
    payment_method: str = ""
    gateway: str = ""
    return_url: str = ""
    cancel_url: str = ""
