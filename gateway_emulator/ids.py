"""Identifiers shaped like the real gateways' ones: a prefix and random base-62 characters."""

from __future__ import annotations

import secrets
import string

_ALPHABET = string.ascii_letters + string.digits


def _random(length: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def razorpay_id(prefix: str) -> str:
    """Razorpay: `order_`, `pay_`… followed by 14 characters (e.g. `order_RB58MiP5SPFYyM`)."""
    return f"{prefix}_{_random(14)}"


def razorpay_event_id() -> str:
    """The `X-Razorpay-Event-Id` header: 14 characters, no prefix."""
    return _random(14)


def stripe_id(prefix: str) -> str:
    """Stripe: `pi_`, `ch_`, `evt_`, `pm_` followed by 24 characters."""
    return f"{prefix}_{_random(24)}"


def stripe_client_secret(intent_id: str) -> str:
    return f"{intent_id}_secret_{_random(25)}"


def stripe_request_id() -> str:
    return f"req_{_random(14)}"
