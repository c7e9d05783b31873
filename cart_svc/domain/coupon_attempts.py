"""How many wrong coupon codes one cart may try: a fixed window that starts at its first refusal.

A code's existence must not be learnable by trying codes on a cart (unlisted codes are private):
refusals name no reason for them (cart_svc/service.py), and past `limit` refusals in `window` the
cart may try no code at all until the window ends, whatever the code.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass


@dataclass(frozen=True)
class AttemptWindow:
    failures: int
    started_at: datetime.datetime


def window_is_over(attempts: AttemptWindow, now: datetime.datetime, window: datetime.timedelta) -> bool:
    return now >= attempts.started_at + window


def locked_out(attempts: AttemptWindow | None, now: datetime.datetime, *, limit: int,
               window: datetime.timedelta) -> bool:
    """True while the cart has used up its refusals of the current window."""
    return attempts is not None and attempts.failures >= limit and not window_is_over(attempts, now, window)


def after_refusal(attempts: AttemptWindow | None, now: datetime.datetime,
                  window: datetime.timedelta) -> AttemptWindow:
    """The window once one more code was refused: a new one when there was none or it is over."""
    if attempts is None or window_is_over(attempts, now, window):
        return AttemptWindow(1, now)
    return AttemptWindow(attempts.failures + 1, attempts.started_at)
