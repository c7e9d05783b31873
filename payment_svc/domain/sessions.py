"""When a payment session ends, and when a new attempt of an order may open one, decided without I/O.

payment_svc reads no order: OpenSession carries the order's own expiry, and a session never
outlives it. An order has one payment attempt open at a time: attempt n > 1 waits until every
earlier attempt has failed, expired or been captured (or its time is up).
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


def open_earlier_attempt(attempt: int, earlier: Iterable[AttemptFacts], now: datetime.datetime) -> int | None:
    """The number of an earlier attempt of the same order that is still open (pending and not yet
    past its expiry), which keeps `attempt` from opening; None when there is none."""
    for facts in sorted(earlier, key=lambda f: f.attempt):
        if facts.attempt < attempt and facts.status == "pending" and facts.expires_at > now:
            return facts.attempt
    return None
