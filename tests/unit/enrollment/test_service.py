"""The enrollment use cases on an in-memory unit of work: one enrollment per line, one event with
all of them and one audit row each, only when this call created them; the handler's verdicts."""

from __future__ import annotations

import dataclasses
import datetime
import uuid

import pytest
from sqlalchemy.exc import OperationalError

from common.consumed import CannotHandle, ConsumedEvent, RetryLater
from enrollment_svc.domain.paid_order import Enrollment, PaidLine, enrollments_for, paid_order
from enrollment_svc.domain.periods import period_end
from enrollment_svc.service import EnrollmentService
from enrollment_svc.workers.order_paid import OrderPaidHandler
from tests.support.fake_uow import FakeUnitOfWork

NOW = datetime.datetime(2026, 3, 31, 12, 0, tzinfo=datetime.UTC)
INTERNSHIP = str(uuid.uuid4())
PLANS = [str(uuid.uuid4()) for _ in range(3)]


class MemoryEnrollments:
    def __init__(self) -> None:
        self.rows: dict[tuple[str, int], Enrollment] = {}
        self.taken_by_another: list[Enrollment] = []  # what a concurrent transaction commits first

    async def of_order(self, conn, order_token):
        return sorted((e for e in self.rows.values() if e.order_token == order_token), key=lambda e: e.line_no)

    async def add_new(self, conn, new):
        for enrollment in self.taken_by_another:
            self.rows[(enrollment.order_token, enrollment.line_no)] = enrollment
        added = [e for e in new if (e.order_token, e.line_no) not in self.rows]
        for enrollment in added:
            self.rows[(enrollment.order_token, enrollment.line_no)] = enrollment
        return added

    async def of_user(self, conn, user_id):
        return [e for e in self.rows.values() if e.user_id == user_id]

    async def cancel_of_order(self, conn, order_token):
        active = [e for e in await self.of_order(conn, order_token) if e.status == "active"]
        for enrollment in active:
            self.rows[(order_token, enrollment.line_no)] = dataclasses.replace(enrollment, status="cancelled")
        return [dataclasses.replace(e, status="cancelled") for e in active]


@pytest.fixture
def uow():
    return FakeUnitOfWork()


@pytest.fixture
def repository():
    return MemoryEnrollments()


@pytest.fixture
def service(uow, repository):
    return EnrollmentService(lambda: uow, repository, clock=lambda: NOW)


def order(lines: int = 3, user_id: str | None = None):
    periods = [(1, "month"), (6, "month"), (1, "year")]
    return paid_order(str(uuid.uuid4()), user_id or str(uuid.uuid4()), "pay-1",
                      [PaidLine(n + 1, INTERNSHIP, PLANS[n], *periods[n]) for n in range(lines)])


async def test_three_lines_become_three_enrollments_one_event_and_three_audit_rows(service, uow):
    paid = order(3)
    enrolled = await service.enroll_paid_order(paid)
    assert enrolled.created and uow.committed
    assert [(e.line_no, e.plan_id, e.ends_at) for e in enrolled.enrollments] == [
        (1, PLANS[0], period_end(NOW, 1, "month")), (2, PLANS[1], period_end(NOW, 6, "month")),
        (3, PLANS[2], period_end(NOW, 12, "month"))]
    [event] = uow.published
    assert (event.subject, event.aggregate_id) == ("checkout.enrollment.created", paid.order_token)
    assert event.payload["order_token"] == paid.order_token and event.payload["user_id"] == paid.user_id
    assert [e["enrollment_id"] for e in event.payload["enrollments"]] == [e.enrollment_id for e in enrolled.enrollments]
    assert [e["plan_id"] for e in event.payload["enrollments"]] == PLANS
    assert event.payload["enrollments"][0]["ends_at"] == "2026-04-30T12:00:00Z"
    assert sorted((a.entity_type, a.entity_id, a.action) for a in uow.audited) == sorted(
        ("enrollment", e.enrollment_id, "created") for e in enrolled.enrollments)
    assert {a.after["payment_token"] for a in uow.audited} == {"pay-1"}


async def test_a_redelivery_changes_nothing_and_publishes_nothing(service, uow, repository):
    paid = order(3)
    first = await service.enroll_paid_order(paid)
    again = await service.enroll_paid_order(paid)
    assert not again.created and again.enrollments == first.enrollments
    assert not uow.committed and len(uow.published) == 1 and len(uow.audited) == 3
    assert len(repository.rows) == 3


async def test_losing_the_race_to_a_concurrent_delivery_publishes_nothing(service, uow, repository):
    paid = order(2)
    repository.taken_by_another = enrollments_for(paid, NOW)
    enrolled = await service.enroll_paid_order(paid)
    assert not enrolled.created and enrolled.enrollments == tuple(repository.taken_by_another)
    assert uow.published == [] and uow.audited == [] and not uow.committed


async def test_lines_partly_enrolled_by_another_event_are_refused_and_rolled_back(service, uow, repository):
    paid = order(3)
    repository.taken_by_another = enrollments_for(paid, NOW)[1:2]  # line 2 only
    with pytest.raises(CannotHandle, match="disagree"):
        await service.enroll_paid_order(paid)
    assert uow.rolled_back and uow.published == [] and uow.audited == []


async def test_a_user_sees_only_their_enrollments(service):
    mine = await service.enroll_paid_order(order(2, user_id=(user := str(uuid.uuid4()))))
    await service.enroll_paid_order(order(1))
    assert await service.enrollments_of(user) == list(mine.enrollments)


async def test_the_handler_retries_a_database_failure_and_counts_outcomes(uow):
    class BrokenDatabase(MemoryEnrollments):
        async def of_order(self, conn, order_token):
            raise OperationalError("SELECT", {}, Exception("connection refused"))

        async def add_new(self, conn, new):
            raise OperationalError("INSERT", {}, Exception("connection refused"))

    paid = order(1)
    payload = {"order_token": paid.order_token, "user_id": paid.user_id, "payment_token": "pay-1",
               "lines": [{"line_no": 1, "internship_id": INTERNSHIP, "plan_id": PLANS[0],
                          "period": {"value": 1, "unit": "month"}}]}
    event = ConsumedEvent("checkout.order.paid", payload)
    with pytest.raises(RetryLater, match="connection refused"):
        await OrderPaidHandler(EnrollmentService(lambda: uow, BrokenDatabase()))(event)

    handler = OrderPaidHandler(EnrollmentService(lambda: uow, MemoryEnrollments()))
    assert (await handler(event)).created and not (await handler(event)).created
    assert (handler.stats.enrolled, handler.stats.already_enrolled) == (1, 1)


async def test_a_refunded_order_cancels_its_enrollments_once(service, repository):
    paid = order(2)
    await service.enroll_paid_order(paid)
    uow = FakeUnitOfWork()
    cancelling = EnrollmentService(lambda: uow, repository, clock=lambda: NOW)
    cancelled = await cancelling.cancel_refunded_order(paid.order_token, paid.user_id, "fully refunded")
    assert [(e.line_no, e.status) for e in cancelled] == [(1, "cancelled"), (2, "cancelled")]
    [event] = uow.published
    assert (event.subject, event.aggregate_id) == ("checkout.enrollment.cancelled", paid.order_token)
    assert [e["status"] for e in event.payload["enrollments"]] == ["cancelled", "cancelled"]
    assert [a.action for a in uow.audited] == ["status:cancelled", "status:cancelled"]
    assert all(e.status == "cancelled" for e in await repository.of_order(None, paid.order_token))
    again = FakeUnitOfWork()
    assert await EnrollmentService(lambda: again, repository).cancel_refunded_order(paid.order_token, paid.user_id,
                                                                                    "again") == []
    assert again.published == [] and again.audited == []


async def test_a_refund_before_the_enrollments_exist_is_retried_later(service):
    with pytest.raises(RetryLater):
        await service.cancel_refunded_order(str(uuid.uuid4()), str(uuid.uuid4()), "fully refunded")
