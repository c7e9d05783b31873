"""When a payment session ends, and when a new attempt of an order may open one, decided without I/O.

payment_svc reads no order: OpenSession carries the order's own expiry, and a session never
outlives it. An order has one payment attempt open at a time: a new attempt (n > 1 after n - 1,
in practice) waits until every other attempt of the order has failed, expired or been captured,
or is past its expiry, so the customer can never pay two sessions of one order at once.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterable


def session_expiry(now: datetime.datetime, ttl: datetime.timedelta,
                   order_expires_at: datetime.datetime) -> datetime.datetime:
    """The session's own life (the contract's 30 minutes), cut short by its order's expiry."""
    return min(now + ttl, order_expires_at)


@dataclasses.dataclass(frozen=True)
class AttemptFacts:
    attempt: int
    status: str
    expires_at: datetime.datetime


def other_open_attempt(attempt: int, attempts: Iterable[AttemptFacts], now: datetime.datetime) -> int | None:
    """The number of another attempt of the same order that is still open (pending and not yet
    past its expiry), which keeps a new `attempt` from opening; None when there is none."""
    for facts in sorted(attempts, key=lambda f: f.attempt):
        if facts.attempt != attempt and facts.status == "pending" and facts.expires_at > now:
            return facts.attempt
    return None
