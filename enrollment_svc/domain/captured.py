"""The `checkout.payment.captured` event as the enrollment consumer reads it, and the order line
it enrolls (known simplification: one enrollment per order, for its first line)."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from enrollment_svc.domain.periods import UNITS


class InvalidEvent(ValueError):
    """The message can never be handled as it is (not JSON, no order token…): dead-letter it."""


@dataclasses.dataclass(frozen=True)
class CapturedPayment:
    order_token: str
    payment_token: str
    user_id: str
    amount: str
    currency: str
    gateway: str
    gateway_payment_id: str


@dataclasses.dataclass(frozen=True)
class EnrolledLine:
    internship_id: str
    plan_id: str
    period_value: int
    period_unit: str


def _uuid(value: Any, field: str) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except (ValueError, TypeError, AttributeError):
        raise InvalidEvent(f"{field} is not a UUID: {value!r}") from None


def parse_captured(data: bytes) -> CapturedPayment:
    try:
        body = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidEvent(f"payload is not JSON: {error}") from None
    if not isinstance(body, dict):
        raise InvalidEvent("payload is not a JSON object")
    if not body.get("order_token"):
        raise InvalidEvent("payload has no order_token")

    def text(name: str) -> str:
        value = body.get(name)
        return "" if value is None else str(value)

    return CapturedPayment(
        order_token=_uuid(body["order_token"], "order_token"),
        payment_token=text("payment_token"),
        user_id=text("user_id"),
        amount=text("amount"),
        currency=text("currency"),
        gateway=text("gateway"),
        gateway_payment_id=text("gateway_payment_id"),
    )


def first_line(items: Sequence[Mapping[str, Any]]) -> EnrolledLine:
    """The order line the enrollment is for; ValueError if the order's snapshot lacks it."""
    if not items:
        raise ValueError("the order has no items")
    line = items[0]
    try:
        value, unit = int(line["period_value"]), str(line["period_unit"])
        internship_id, plan_id = str(line["internship_id"]), str(line["plan_id"])
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"the order's first item lacks a plan period: {error!r}") from None
    if unit not in UNITS:
        raise ValueError(f"the order's first item has period unit {unit!r}")
    return EnrolledLine(internship_id=internship_id, plan_id=plan_id, period_value=value, period_unit=unit)
