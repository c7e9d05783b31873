"""When an enrollment ends: its start plus the plan's period, in calendar months or years.

Calendar arithmetic, not a fixed number of days: Jan 15 + 1 month is Feb 15. A day that the
target month lacks is clamped to that month's last day (Jan 31 + 1 month = Feb 28, or Feb 29 in a
leap year; Feb 29 + 1 year = Feb 28). The time of day and the time zone are kept.
"""

from __future__ import annotations

import calendar
import datetime
from typing import Final

UNITS: Final = frozenset({"month", "year"})
MAX_PERIOD_VALUE: Final = 36  # the plans table allows 1..36


class InvalidPeriod(ValueError):
    pass


def add_months(start: datetime.datetime, months: int) -> datetime.datetime:
    index = start.month - 1 + months
    year, month = start.year + index // 12, index % 12 + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return start.replace(year=year, month=month, day=day)


def check_period(value: int, unit: str) -> None:
    """InvalidPeriod unless unit is "month" or "year" and value an integer 1..36."""
    if unit not in UNITS:
        raise InvalidPeriod(f"period unit must be month or year, not {unit!r}")
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_PERIOD_VALUE:
        raise InvalidPeriod(f"period value must be an integer from 1 to {MAX_PERIOD_VALUE}, not {value!r}")


def period_end(start: datetime.datetime, value: int, unit: str) -> datetime.datetime:
    """`start` + `value` `unit`s (unit "month" or "year", value 1..36)."""
    check_period(value, unit)
    return add_months(start, value if unit == "month" else 12 * value)
