"""The HMAC-SHA256 signatures both gateways put on redirects and webhooks."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence


def hex_hmac_sha256(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def razorpay_payment_signature(key_secret: str, order_id: str, payment_id: str) -> str:
    """What Razorpay Checkout hands the browser: HMAC(key_secret, "order_id|payment_id")."""
    return hex_hmac_sha256(key_secret, f"{order_id}|{payment_id}".encode())


def razorpay_webhook_signature(webhook_secret: str, body: bytes) -> str:
    """`X-Razorpay-Signature`: hex HMAC of the raw body with the webhook secret."""
    return hex_hmac_sha256(webhook_secret, body)


def stripe_signature_header(secrets: Sequence[str], body: bytes, timestamp: int) -> str:
    """`Stripe-Signature: t=<ts>,v1=<sig>[,v1=<sig>…]`: one v1 per active secret, as Stripe does
    while an endpoint secret is being rolled."""
    signed = f"{timestamp}.".encode() + body
    parts = [f"t={timestamp}"] + [f"v1={hex_hmac_sha256(s, signed)}" for s in secrets]
    return ",".join(parts)
