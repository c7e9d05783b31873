"""Enrollment end dates: calendar months and years, clamped to the target month's last day."""

from __future__ import annotations

import calendar
import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from enrollment_svc.domain.periods import InvalidPeriod, period_end

UTC = datetime.UTC


def at(year: int, month: int, day: int, hour: int = 10, minute: int = 30) -> datetime.datetime:
    return datetime.datetime(year, month, day, hour, minute, 15, 123456, tzinfo=UTC)


@pytest.mark.parametrize(("start", "value", "unit", "end"), [
    (at(2026, 1, 15), 1, "month", at(2026, 2, 15)),
    (at(2026, 1, 15), 3, "month", at(2026, 4, 15)),
    (at(2026, 1, 15), 6, "month", at(2026, 7, 15)),
    (at(2026, 1, 31), 1, "month", at(2026, 2, 28)),   # clamped to the month's end
    (at(2028, 1, 31), 1, "month", at(2028, 2, 29)),   # leap year
    (at(2026, 3, 31), 1, "month", at(2026, 4, 30)),
    (at(2026, 8, 31), 6, "month", at(2027, 2, 28)),
    (at(2026, 10, 31), 3, "month", at(2027, 1, 31)),  # across the year end
    (at(2026, 12, 1), 1, "month", at(2027, 1, 1)),
    (at(2026, 11, 30), 3, "month", at(2027, 2, 28)),
    (at(2026, 5, 20), 36, "month", at(2029, 5, 20)),
    (at(2026, 5, 20), 1, "year", at(2027, 5, 20)),
    (at(2028, 2, 29), 1, "year", at(2029, 2, 28)),    # Feb 29 + 1 year
    (at(2028, 2, 29), 4, "year", at(2032, 2, 29)),
])
def test_period_end_table(start, value, unit, end):
    assert period_end(start, value, unit) == end


@pytest.mark.parametrize(("value", "unit"), [(0, "month"), (37, "month"), (-1, "year"), (1, "week"), (1, "months"),
                                             (True, "month"), ("3", "month"), (1.5, "month")])
def test_invalid_periods_are_refused(value, unit):
    with pytest.raises(InvalidPeriod):
        period_end(at(2026, 1, 1), value, unit)


starts = st.datetimes(min_value=datetime.datetime(1970, 1, 1), max_value=datetime.datetime(2200, 12, 31),
                      timezones=st.just(UTC))


@given(start=starts, months=st.integers(1, 36))
def test_month_arithmetic_properties(start, months):
    end = period_end(start, months, "month")
    assert end > start
    assert (end.year - start.year) * 12 + end.month - start.month == months
    assert end.day == min(start.day, calendar.monthrange(end.year, end.month)[1])
    assert (end.hour, end.minute, end.second, end.microsecond, end.tzinfo) == (
        start.hour, start.minute, start.second, start.microsecond, start.tzinfo)
    # never shorter than the shortest calendar months, never longer than the longest
    assert datetime.timedelta(days=28 * months) <= end - start <= datetime.timedelta(days=31 * months)


@given(start=starts, months=st.integers(1, 35))
def test_longer_plans_never_end_earlier(start, months):
    assert period_end(start, months, "month") <= period_end(start, months + 1, "month")


@given(start=starts, years=st.integers(1, 3))
def test_a_year_is_twelve_months(start, years):
    assert period_end(start, years, "year") == period_end(start, 12 * years, "month")
