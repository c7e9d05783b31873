"""What a client asks of the order service, as plain values."""

from __future__ import annotations

import dataclasses
import json

PAYMENT_METHODS = ("upi", "card", "netbanking", "wallet")
GATEWAYS = ("razorpay", "stripe")
DEFAULT_GATEWAY = "razorpay"


@dataclasses.dataclass(frozen=True)
class OrderRequest:
    cart_token: str
    billing_country: str = ""
    billing_state: str = ""
    payment_method: str = ""
    gateway: str = ""
    return_url: str = ""
    cancel_url: str = ""
    billing_name: str = ""   # printed on the tax invoice only: cart_svc prices by country and state
    billing_gstin: str = ""

    def canonical(self) -> bytes:
        """The request's fingerprint input: the same body gives the same bytes (Idempotency-Key)."""
        return json.dumps(dataclasses.asdict(self), sort_keys=True, separators=(",", ":")).encode()

    @property
    def billing(self) -> dict[str, str]:
        return {"country": self.billing_country, "state": self.billing_state} if self.billing_country else {}

    @property
    def invoice_details(self) -> dict[str, str]:
        """What the tax invoice prints of the buyer besides the priced billing (upper-case GSTIN)."""
        details = {"name": self.billing_name.strip(), "gstin": self.billing_gstin.strip().upper()}
        return {name: value for name, value in details.items() if value}
