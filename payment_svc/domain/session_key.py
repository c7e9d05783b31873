"""Our idempotency key for one payment attempt at a gateway: "<order token>:<attempt>".

The same key goes to either gateway (Razorpay's `receipt`, Stripe's `Idempotency-Key`), so a
retried OpenSession of the same attempt can only ever find or create the same gateway order.
Razorpay caps a receipt at 40 characters: a 36-character UUID, a colon and up to 3 digits.
"""

from __future__ import annotations

import uuid
from typing import Final

MAX_RECEIPT: Final = 40
MAX_ATTEMPT: Final = 999


def session_key(order_token: str, attempt: int) -> str:
    if not 1 <= attempt <= MAX_ATTEMPT:
        raise ValueError(f"attempt must be between 1 and {MAX_ATTEMPT}, got {attempt}")
    key = f"{uuid.UUID(order_token)}:{attempt}"
    assert len(key) <= MAX_RECEIPT
    return key
