"""A paid order as enrollment_svc reads it (from `checkout.order.paid`), and the enrollments it
yields: one per line, starting now and ending after the line's plan period.

The event's content is checked here, once: an order without lines, a line without a valid period,
ids that are not UUIDs or line numbers that repeat can never be enrolled as they are
(InvalidPaidOrder: the consumer parks the event for a person).
"""

from __future__ import annotations

import dataclasses
import datetime
import uuid
from collections.abc import Callable, Sequence

from enrollment_svc.domain.periods import InvalidPeriod, check_period, period_end

ACTIVE = "active"


class InvalidPaidOrder(ValueError):
    """The event can never be enrolled as it is."""


@dataclasses.dataclass(frozen=True)
class PaidLine:
    line_no: int
    internship_id: str
    plan_id: str
    period_value: int
    period_unit: str


@dataclasses.dataclass(frozen=True)
class PaidOrder:
    order_token: str
    user_id: str
    payment_token: str
    lines: tuple[PaidLine, ...]


@dataclasses.dataclass(frozen=True)
class Enrollment:
    enrollment_id: str
    order_token: str
    line_no: int
    user_id: str
    internship_id: str
    plan_id: str
    status: str
    starts_at: datetime.datetime
    ends_at: datetime.datetime


def _uuid(value: str, field: str) -> str:
    try:
        return str(uuid.UUID(value))
    except (ValueError, TypeError, AttributeError):
        raise InvalidPaidOrder(f"{field} is not a UUID: {value!r}") from None


def paid_order(order_token: str, user_id: str, payment_token: str, lines: Sequence[PaidLine]) -> PaidOrder:
    """The checked order: ids normalised, every line with a valid plan period, line numbers unique."""
    token = _uuid(order_token, "order_token")
    if not lines:
        raise InvalidPaidOrder(f"order {token} has no lines")
    checked = []
    for line in lines:
        where = f"order {token} line {line.line_no}"
        if line.line_no < 1:
            raise InvalidPaidOrder(f"{where}: line_no must be 1 or more")
        try:
            check_period(line.period_value, line.period_unit)
        except InvalidPeriod as error:
            raise InvalidPaidOrder(f"{where}: {error}") from None
        checked.append(dataclasses.replace(line, internship_id=_uuid(line.internship_id, f"{where}: internship_id"),
                                           plan_id=_uuid(line.plan_id, f"{where}: plan_id")))
    numbers = [line.line_no for line in checked]
    if len(set(numbers)) != len(numbers):
        raise InvalidPaidOrder(f"order {token}: line numbers repeat: {numbers}")
    return PaidOrder(token, _uuid(user_id, "user_id"), payment_token,
                     tuple(sorted(checked, key=lambda line: line.line_no)))


def enrollments_for(order: PaidOrder, now: datetime.datetime,
                    new_id: Callable[[], str] = lambda: str(uuid.uuid4())) -> list[Enrollment]:
    """One active enrollment per line, all starting `now`."""
    return [Enrollment(enrollment_id=new_id(), order_token=order.order_token, line_no=line.line_no,
                       user_id=order.user_id, internship_id=line.internship_id, plan_id=line.plan_id, status=ACTIVE,
                       starts_at=now, ends_at=period_end(now, line.period_value, line.period_unit))
            for line in order.lines]
