"""Idempotency keys as Stripe documents them, decided without I/O.

The same key with the same request returns the stored result (errors included); the same key
with a different request is refused (2005); a key whose request is still running is refused as
in flight (2006, retryable). A request that failed in a retryable way keeps its recovery point,
so the retry resumes where it stopped instead of starting again.

Recovery points of CreateOrder (order_svc/place_order.py):
  started ──► converting (order_token = the placement's) ──► order_created (order_token = the
  order's) ──► finished (response stored)
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Final, Literal

from common.errors import CheckoutError, ErrorCode

RecoveryPoint = Literal["started", "converting", "order_created", "finished"]
MAX_KEY_LENGTH: Final = 255
KEY_RETENTION_HOURS: Final = 24


@dataclasses.dataclass(frozen=True)
class StoredKey:
    request_hash: str
    recovery_point: str
    response_code: int | None  # 0 = success, else the checkout error code
    response_body: bytes | None
    order_token: str | None


def fingerprint(method: str, canonical_request: bytes) -> str:
    return hashlib.sha256(method.encode() + b"\n" + canonical_request).hexdigest()


def check_key(key: str) -> None:
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isprintable():
        raise CheckoutError(ErrorCode.VALIDATION_FAILED,
                            validation_messages=[f"Idempotency-Key: 1-{MAX_KEY_LENGTH} printable characters"])


def ensure_same_request(stored: StoredKey, request_hash: str) -> None:
    if stored.request_hash != request_hash:
        raise CheckoutError(ErrorCode.IDEMPOTENCY_KEY_REUSED)


def is_finished(stored: StoredKey) -> bool:
    return stored.recovery_point == "finished" and stored.response_code is not None


def ensure_replayable(stored: StoredKey, request_hash: str) -> None:
    """A key this request could not take: another request (2005), or this one still running
    elsewhere (2006); returns only when the key holds a finished answer to replay."""
    ensure_same_request(stored, request_hash)
    if not is_finished(stored):
        raise CheckoutError(ErrorCode.IDEMPOTENCY_KEY_IN_FLIGHT)


def should_store(error: CheckoutError) -> bool:
    """A final answer is stored and replayed; a retryable failure is not, so a retry can succeed."""
    return not error.retryable
