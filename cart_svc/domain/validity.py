"""Validity windows shared by coupons and sales: [starts_at, ends_at), aware datetimes only."""

from __future__ import annotations

from datetime import datetime


def require_window(starts_at: datetime | None, ends_at: datetime | None) -> None:
    """Raise ValueError unless both ends are timezone-aware (or absent) and in order."""
    for name, moment in (("starts_at", starts_at), ("ends_at", ends_at)):
        if moment is not None:
            require_aware(name, moment)
    if starts_at is not None and ends_at is not None and ends_at <= starts_at:
        raise ValueError(f"ends_at {ends_at.isoformat()} must be after starts_at {starts_at.isoformat()}")


def require_aware(name: str, moment: datetime) -> None:
    # Comparing naive and aware datetimes raises TypeError at the worst moment; a naive
    # one read as local time would shift a window by hours. Refuse both up front.
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {moment.isoformat()}")


def has_started(starts_at: datetime | None, now: datetime) -> bool:
    require_aware("now", now)
    return starts_at is None or now >= starts_at


def has_ended(ends_at: datetime | None, now: datetime) -> bool:
    """`ends_at` is exclusive: at that instant the window is already closed."""
    require_aware("now", now)
    return ends_at is not None and now >= ends_at


def is_open(starts_at: datetime | None, ends_at: datetime | None, now: datetime) -> bool:
    return has_started(starts_at, now) and not has_ended(ends_at, now)
