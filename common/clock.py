"""UTC time and its RFC 3339 spelling on the wire."""

from __future__ import annotations

import datetime


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def rfc3339(moment: datetime.datetime | None) -> str:
    """'2026-11-26T15:04:05Z' (microseconds dropped); empty for no moment."""
    if moment is None:
        return ""
    return moment.astimezone(datetime.UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text: str) -> datetime.datetime:
    """Raises ValueError for anything that is not an RFC 3339 timestamp with a zone."""
    moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone")
    return moment.astimezone(datetime.UTC)
