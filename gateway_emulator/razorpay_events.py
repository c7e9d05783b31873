"""Razorpay webhook bodies: `{"entity":"event","event":…,"contains":[…],"payload":{…}}`,
encoded as Razorpay's PHP does (compact, ASCII-only, "/" escaped as "\\/"), so a receiver that
re-serialises the JSON instead of verifying the raw bytes fails, as it would in production."""

from __future__ import annotations

import json
import time
from typing import Any

from .ids import razorpay_event_id
from .razorpay_entities import order_entity, payment_entity
from .store import RazorpayOrder, RazorpayPayment


def razorpay_event(
    event: str, account_id: str, payment: RazorpayPayment, order: RazorpayOrder | None = None
) -> tuple[str, bytes]:
    """(the X-Razorpay-Event-Id, the raw body)."""
    payload: dict[str, Any] = {"payment": {"entity": payment_entity(payment)}}
    contains = ["payment"]
    if order is not None:
        payload["order"] = {"entity": order_entity(order)}
        contains.append("order")
    body = {
        "entity": "event",
        "account_id": account_id,
        "event": event,
        "contains": contains,
        "payload": payload,
        "created_at": int(time.time()),
    }
    return razorpay_event_id(), php_json(body)


def php_json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True).replace("/", "\\/").encode()
