"""When the reconciler looks a session up again: exponential backoff with jitter, capped.

A session nobody pays is looked up first PAYMENT_RECONCILE_AFTER seconds after it opened, then
after `first_s`, 2·`first_s`, 4·`first_s`, … but never more than `cap_s` apart, each delay
shortened by up to `jitter` of itself (at random) so that sessions opened together spread out.
At the defaults (120 s, 60 s, 900 s cap) a session abandoned for its 30 minutes and the 15
minutes of grace is looked up 6 or 7 times instead of once a pass (about 43).
"""

from __future__ import annotations

import datetime
import random
from collections.abc import Callable

MAX_DOUBLINGS = 30  # 2**30 · first_s is past any sensible cap: no bigger powers needed


def next_check_delay(checks: int, *, first_s: float, cap_s: float, jitter: float = 0.2,
                     draw: Callable[[], float] = random.random) -> float:
    """Seconds until the next look-up of a session looked up `checks` times (≥ 1) so far:
    min(cap, first · 2^(checks − 1)) · (1 − jitter · u), u uniform in [0, 1)."""
    if checks < 1:
        raise ValueError("checks: the look-ups so far, at least 1")
    raw = min(cap_s, first_s * 2 ** min(checks - 1, MAX_DOUBLINGS))
    return raw * (1 - jitter * draw())


def next_check_at(now: datetime.datetime, checks: int, *, first_s: float, cap_s: float, jitter: float = 0.2,
                  draw: Callable[[], float] = random.random) -> datetime.datetime:
    return now + datetime.timedelta(seconds=next_check_delay(checks, first_s=first_s, cap_s=cap_s, jitter=jitter,
                                                             draw=draw))
