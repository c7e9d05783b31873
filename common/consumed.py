"""What an event handler receives, and how it says "later" or "never" (common/consumer.py)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any


class RetryLater(Exception):
    """The event may succeed later (what it needs has not happened yet): nak it."""


class CannotHandle(Exception):
    """The event will not succeed without a person: park it as a dead letter."""


@dataclasses.dataclass(frozen=True)
class ConsumedEvent:
    subject: str  # the outbox subject, e.g. "checkout.payment.captured" (no test namespace)
    payload: Mapping[str, Any]
    event_id: str = ""  # the producer's outbox id (Nats-Msg-Id)


Handler = Callable[[ConsumedEvent], Awaitable[object]]


def parse_event(subject: str, data: bytes, event_id: str = "") -> ConsumedEvent:
    """CannotHandle for anything but a JSON object."""
    try:
        payload = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CannotHandle(f"payload is not JSON: {error}") from None
    if not isinstance(payload, dict):
        raise CannotHandle("payload is not a JSON object")
    return ConsumedEvent(subject, payload, event_id)
