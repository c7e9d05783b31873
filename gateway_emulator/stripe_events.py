"""Stripe webhook bodies: snapshot `event` objects, pretty-printed as Stripe sends them."""

from __future__ import annotations

import json
import time
from typing import Any

from .ids import stripe_id


def stripe_event(
    event_type: str,
    data_object: dict[str, Any],
    *,
    api_version: str,
    request_id: str | None,
    idempotency_key: str | None,
) -> tuple[str, bytes]:
    """(the event id, the raw body)."""
    event_id = stripe_id("evt")
    body = {
        "id": event_id,
        "object": "event",
        "api_version": api_version,
        "created": int(time.time()),
        "data": {"object": data_object},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": request_id, "idempotency_key": idempotency_key},
        "type": event_type,
    }
    return event_id, json.dumps(body, indent=2, ensure_ascii=False).encode("utf-8")
