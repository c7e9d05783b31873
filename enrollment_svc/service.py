"""enrollment_svc's use cases: a paid order becomes one enrollment per line; a fully refunded
order's enrollments are cancelled; a user's
enrollments; the dead letters of its consumer, listed and replayed by an admin. Each returns plain
views (domain dataclasses, common.dead_letters records), never protobuf."""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from common.clock import utc_now
from common.consumed import CannotHandle, Handler, RetryLater
from common.dead_letters import DeadLetterRecord, DeadLetterStore
from common.uow import UnitOfWorkFactory, reading
from enrollment_svc.domain.paid_order import Enrollment, PaidOrder, enrollments_for
from enrollment_svc.events import ENROLLMENT_CANCELLED, ENROLLMENT_CREATED, enrollments_cancelled, enrollments_created

SYSTEM_ACTOR = "enrollment_svc"


class EnrollmentStore(Protocol):  # enrollment_svc.repository.EnrollmentRepository; tests: an in-memory one
    async def of_order(self, conn: Any, order_token: str) -> list[Enrollment]: ...
    async def add_new(self, conn: Any, new: Sequence[Enrollment]) -> list[Enrollment]: ...
    async def cancel_of_order(self, conn: Any, order_token: str) -> list[Enrollment]: ...
    async def of_user(self, conn: Any, user_id: str) -> list[Enrollment]: ...


@dataclasses.dataclass(frozen=True)
class Enrolled:
    order_token: str
    enrollments: tuple[Enrollment, ...]  # all of the order's, by line
    created: bool  # False: they existed already (a redelivery, a replay, a concurrent delivery)


class EnrollmentService:
    def __init__(self, uow: UnitOfWorkFactory, repository: EnrollmentStore,
                 clock: Callable[[], datetime.datetime] = utc_now) -> None:
        self._uow = uow
        self._repository = repository
        self._clock = clock

    async def enroll_paid_order(self, order: PaidOrder) -> Enrolled:
        """In one transaction: one enrollment per line, one `checkout.enrollment.created` event
        with all of them, one audit row each. An order enrolled before is returned unchanged, with
        no event: UNIQUE (order_token, line_no) makes that hold for concurrent deliveries too."""
        async with self._uow() as uow:
            now = self._clock()
            planned = enrollments_for(order, now)
            created = await self._repository.add_new(uow.conn, planned)
            if not created:  # enrolled before (a redelivery, a replay), or by a concurrent delivery of
                # this order that committed them while we waited on its rows
                existing = await self._repository.of_order(uow.conn, order.order_token)
                return Enrolled(order.order_token, tuple(existing), created=False)
            if len(created) != len(planned):  # rolled back: another event enrolled other lines of this order
                raise CannotHandle(f"order {order.order_token}: lines {sorted(e.line_no for e in created)} were free "
                                   f"but not all of {[e.line_no for e in planned]}; the paid events disagree")
            for enrollment in created:
                uow.audit(actor=SYSTEM_ACTOR, entity_type="enrollment", entity_id=enrollment.enrollment_id,
                          action="created", before=None,
                          after={**dataclasses.asdict(enrollment), "payment_token": order.payment_token})
            uow.publish(ENROLLMENT_CREATED, order.order_token, enrollments_created(order, created, now))
            await uow.commit()
        return Enrolled(order.order_token, tuple(created), created=True)

    async def cancel_refunded_order(self, order_token: str, user_id: str, reason: str) -> list[Enrollment]:
        """In one transaction: the order's active enrollments cancelled, one audit row each, one
        `checkout.enrollment.cancelled` with them. Cancelled before: nothing, no event. None yet
        (the refund overtook the paid order's enrollment): RetryLater, so it is cancelled once they exist."""
        async with self._uow() as uow:
            cancelled = await self._repository.cancel_of_order(uow.conn, order_token)
            if not cancelled:
                if not await self._repository.of_order(uow.conn, order_token):
                    raise RetryLater(f"order {order_token} has no enrollments yet")
                await uow.commit()
                return []
            now = self._clock()
            for enrollment in cancelled:
                uow.audit(actor=SYSTEM_ACTOR, entity_type="enrollment", entity_id=enrollment.enrollment_id,
                          action="status:cancelled", before={"status": "active"},
                          after={"status": "cancelled", "reason": reason, "order_token": order_token})
            uow.publish(ENROLLMENT_CANCELLED, order_token,
                        enrollments_cancelled(order_token, user_id, cancelled, reason, now))
            await uow.commit()
        return cancelled

    async def enrollments_of(self, user_id: str) -> list[Enrollment]:
        async with reading(self._uow) as uow:
            return await self._repository.of_user(uow.conn, user_id)


class DeadLetterDesk:
    """The consumer's dead letters: an admin lists them and replays one through its handler."""

    def __init__(self, store: DeadLetterStore, handlers: Mapping[str, Handler]) -> None:
        self._store = store
        self._handlers = handlers

    async def recent(self) -> list[DeadLetterRecord]:
        """Newest first, at most 1000."""
        return await self._store.list()

    async def parked(self) -> list[str]:
        """The ids of the parked ones, oldest first."""
        return [letter.dead_letter_id for letter in reversed(await self._store.list(status="parked"))]

    async def replay(self, dead_letter_id: str, *, actor: str) -> DeadLetterRecord:
        """1000 for an id that is not a UUID or a payload that is not JSON, 3201 for an unknown id,
        2102 (with the handler's reason, stored on the letter) when the handler refuses again."""
        return await self._store.replay(dead_letter_id, self._handlers, actor=actor)
