"""The coupon attempts window: `limit` refusals, then none until the window that began with the
first of them is over."""

from __future__ import annotations

import datetime

from cart_svc.domain.coupon_attempts import AttemptWindow, after_refusal, locked_out

T0 = datetime.datetime(2026, 12, 3, 10, 0, tzinfo=datetime.UTC)
HOUR = datetime.timedelta(hours=1)


def test_a_cart_with_no_refusals_or_fewer_than_the_limit_may_try() -> None:
    assert not locked_out(None, T0, limit=3, window=HOUR)
    assert not locked_out(AttemptWindow(2, T0), T0, limit=3, window=HOUR)


def test_at_the_limit_it_may_not_until_the_window_ends() -> None:
    used_up = AttemptWindow(3, T0)
    assert locked_out(used_up, T0 + HOUR - datetime.timedelta(microseconds=1), limit=3, window=HOUR)
    assert not locked_out(used_up, T0 + HOUR, limit=3, window=HOUR)


def test_refusals_count_within_a_window_and_start_a_new_one_after_it() -> None:
    first = after_refusal(None, T0, HOUR)
    assert first == AttemptWindow(1, T0)
    second = after_refusal(first, T0 + datetime.timedelta(minutes=59), HOUR)
    assert second == AttemptWindow(2, T0)  # the window does not slide
    assert after_refusal(second, T0 + HOUR, HOUR) == AttemptWindow(1, T0 + HOUR)
