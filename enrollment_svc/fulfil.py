"""The use case: a captured payment becomes exactly one enrollment, in the caller's transaction.

In ONE transaction: lock the order row; an enrollment already there → nothing to do; else insert
the enrollment (dates from the order's plan period), move the order paid → fulfilled through the
order state machine with enrollment_id set, write the `checkout.enrollment.created` outbox row and
the audit rows. The consumer acks only after this commits, so a redelivery finds the enrollment
and changes nothing. Known simplification: one enrollment per order, for its first line.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import uuid

from sqlalchemy.ext.asyncio import AsyncConnection

from common.audit import append_audit
from common.clock import rfc3339
from common.events import ENROLLMENT_CREATED_SUBJECT
from common.outbox import add_event
from enrollment_svc import repository
from enrollment_svc.domain.captured import CapturedPayment, first_line
from enrollment_svc.domain.periods import period_end
from order_svc.domain.order_status import MAY_BE_PAID, transition

SYSTEM_ACTOR = "enrollment_svc"

_log = logging.getLogger(__name__)


class RetryLater(Exception):
    """The event may succeed later (the order is not paid yet, or not visible yet): nak it."""


class CannotFulfil(Exception):
    """The event will not succeed without a person (the order is cancelled, expired…): park it."""


@dataclasses.dataclass(frozen=True)
class Fulfilment:
    enrollment_id: str
    created: bool  # False: the order was already enrolled (a redelivery or a replay)


async def fulfil_captured(conn: AsyncConnection, event: CapturedPayment, now: datetime.datetime,
                          *, actor: str = SYSTEM_ACTOR) -> Fulfilment:
    token = event.order_token
    order = await repository.lock_order(conn, token)
    if order is None:
        raise RetryLater(f"order {token} not found")
    if event.user_id and event.user_id != order.user_id:
        _log.warning("captured event names another user than the order; the order's is used",
                     extra={"order_token": token})

    existing = await repository.enrollment_of_order(conn, token)
    if existing is not None:
        if order.status == "paid":  # enrolled by an older writer that left the order behind
            await _mark_fulfilled(conn, token, order.status, existing.enrollment_id, now, actor)
        return Fulfilment(existing.enrollment_id, created=False)

    if order.status != "paid":
        if order.status in MAY_BE_PAID:
            raise RetryLater(f"order {token} is {order.status}, not paid yet")
        raise CannotFulfil(f"order {token} is {order.status}; a captured payment cannot fulfil it")
    try:
        line = first_line(order.items)
    except ValueError as error:
        raise CannotFulfil(f"order {token}: {error}") from None

    record = repository.EnrollmentRecord(
        enrollment_id=str(uuid.uuid4()), order_token=token, user_id=order.user_id,
        internship_id=line.internship_id, plan_id=line.plan_id, status="active",
        starts_at=now, ends_at=period_end(now, line.period_value, line.period_unit),
    )
    if not await repository.insert_enrollment(conn, record):
        winner = await repository.enrollment_of_order(conn, token)
        assert winner is not None
        return Fulfilment(winner.enrollment_id, created=False)

    await _mark_fulfilled(conn, token, order.status, record.enrollment_id, now, actor)
    await add_event(conn, subject=ENROLLMENT_CREATED_SUBJECT, aggregate_id=token, payload={
        "enrollment_id": record.enrollment_id, "order_token": token, "user_id": record.user_id,
        "internship_id": record.internship_id, "plan_id": record.plan_id, "status": record.status,
        "starts_at": rfc3339(record.starts_at), "ends_at": rfc3339(record.ends_at),
        "payment_token": event.payment_token,
    })
    await append_audit(conn, actor=actor, entity_type="enrollment", entity_id=record.enrollment_id, action="created",
                       before=None, after=dataclasses.asdict(record))
    return Fulfilment(record.enrollment_id, created=True)


async def _mark_fulfilled(conn: AsyncConnection, token: str, current: str, enrollment_id: str,
                          now: datetime.datetime, actor: str) -> None:
    status = transition(current, "fulfilled")
    await repository.set_order_fulfilled(conn, token, status, enrollment_id, now)
    await append_audit(conn, actor=actor, entity_type="order", entity_id=token, action="fulfilled",
                       before={"status": current}, after={"status": status, "enrollment_id": enrollment_id})
