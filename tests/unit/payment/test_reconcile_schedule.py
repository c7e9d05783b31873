"""The reconciler's schedule (domain/reconcile_schedule.py): doubling from the first delay, capped,
shortened by the jitter, all computed by hand."""

from __future__ import annotations

import datetime

import pytest

from payment_svc.domain.reconcile_schedule import next_check_at, next_check_delay

FIRST, CAP = 60.0, 900.0


@pytest.mark.parametrize("checks, delay", [(1, 60.0), (2, 120.0), (3, 240.0), (4, 480.0), (5, 900.0), (6, 900.0),
                                           (1000, 900.0)])
def test_doubling_then_the_cap_without_jitter(checks: int, delay: float) -> None:
    assert next_check_delay(checks, first_s=FIRST, cap_s=CAP, jitter=0.0) == delay


@pytest.mark.parametrize("draw, delay", [(0.0, 240.0), (0.5, 216.0), (0.999, 240.0 * (1 - 0.2 * 0.999))])
def test_the_jitter_only_shortens(draw: float, delay: float) -> None:
    assert next_check_delay(3, first_s=FIRST, cap_s=CAP, jitter=0.2, draw=lambda: draw) == pytest.approx(delay)


def test_a_session_abandoned_for_45_minutes_is_looked_up_6_times_not_43() -> None:
    """First look-up at 2 minutes (PAYMENT_RECONCILE_AFTER), then +1, +2, +4, +8, +15 (cap) minutes:
    at 2, 3, 5, 9, 17, 32; the next (47) is past the 30 minutes + 15 of grace."""
    at, checks, times = 120.0, 0, []
    while at <= 45 * 60:
        times.append(at)
        checks += 1
        at += next_check_delay(checks, first_s=FIRST, cap_s=CAP, jitter=0.0)
    assert [t / 60 for t in times] == [2, 3, 5, 9, 17, 32]


def test_next_check_at_and_bad_input() -> None:
    now = datetime.datetime(2026, 12, 3, 8, 0, tzinfo=datetime.UTC)
    assert next_check_at(now, 2, first_s=FIRST, cap_s=CAP, draw=lambda: 0.5) == now + datetime.timedelta(seconds=108)
    with pytest.raises(ValueError):
        next_check_delay(0, first_s=FIRST, cap_s=CAP)
