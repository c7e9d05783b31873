"""Razorpay's browser-callback signature: hex HMAC-SHA256(key_secret, "order_id|payment_id").

Compared in constant time. It covers only the two ids, so it proves the ids came from Razorpay
Checkout, not what happened to the payment: that is always fetched from the gateway.
"""

from __future__ import annotations

import hashlib
import hmac


def expected_signature(key_secret: str, order_id: str, payment_id: str) -> str:
    return hmac.new(key_secret.encode(), f"{order_id}|{payment_id}".encode(), hashlib.sha256).hexdigest()


def is_valid_callback(key_secret: str, order_id: str, payment_id: str, signature: str) -> bool:
    if not (order_id and payment_id and signature):
        return False
    expected = expected_signature(key_secret, order_id, payment_id)
    return hmac.compare_digest(expected.encode(), signature.strip().lower().encode())
