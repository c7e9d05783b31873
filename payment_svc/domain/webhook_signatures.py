"""Webhook signatures, checked over the exact bytes received (never re-serialised JSON).

Both gateways sign with HMAC-SHA256. Every configured secret is tried (RAZORPAY_WEBHOOK_SECRET and
STRIPE_WEBHOOK_SECRET are comma lists, so an old and a new secret both work while one is rolled),
and every comparison is constant-time (hmac.compare_digest). Pure functions, no I/O.

  Razorpay  X-Razorpay-Signature = hex HMAC-SHA256(secret, raw body)
  Stripe    Stripe-Signature = t=<unix seconds>,v1=<hex HMAC-SHA256(secret, f"{t}.{raw body}")>[,v1=…]
            (several v1 while Stripe rolls the endpoint secret; other schemes such as v0 are
            ignored). The timestamp must lie within `tolerance_s` of now, in either direction:
            a captured request cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence

STRIPE_TOLERANCE_S = 300
MAX_SIGNATURE_HEADER = 4096  # longer headers are refused before any HMAC is computed


def _hmac_hex(secret: str, message: bytes) -> bytes:
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest().encode("ascii")


def _matches(expected: bytes, offered: Iterable[str]) -> bool:
    """Constant-time comparison of one expected hex digest with each offered value (no early exit)."""
    found = False
    for value in offered:
        candidate = value.strip().lower().encode("utf-8", "replace")
        found |= hmac.compare_digest(expected, candidate)
    return found


def verify_razorpay(body: bytes, signatures: Sequence[str], secrets: Sequence[str]) -> bool:
    """True when one of `signatures` (the X-Razorpay-Signature values) is the HMAC of `body`
    under one of `secrets`."""
    offered = [s for s in signatures if s and len(s) <= MAX_SIGNATURE_HEADER]
    if not offered or not secrets:
        return False
    valid = False
    for secret in secrets:
        if secret:
            valid |= _matches(_hmac_hex(secret, body), offered)
    return valid


def parse_stripe_header(header: str) -> tuple[int | None, list[str]]:
    """(t, every v1 value) of a Stripe-Signature header; t is None when absent or not an integer."""
    timestamp: int | None = None
    v1: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                return None, []
        elif key == "v1" and value:
            v1.append(value)
    return timestamp, v1


def verify_stripe(body: bytes, header: str, secrets: Sequence[str], *, now: float,
                  tolerance_s: float = STRIPE_TOLERANCE_S) -> bool:
    """True when the header's timestamp is within `tolerance_s` of `now` and one of its v1
    signatures is the HMAC of f"{t}.{body}" under one of `secrets`."""
    if not header or len(header) > MAX_SIGNATURE_HEADER or not secrets:
        return False
    timestamp, offered = parse_stripe_header(header)
    if timestamp is None or not offered:
        return False
    if abs(now - timestamp) > tolerance_s:
        return False
    signed = f"{timestamp}.".encode("ascii") + body
    valid = False
    for secret in secrets:
        if secret:
            valid |= _matches(_hmac_hex(secret, signed), offered)
    return valid
