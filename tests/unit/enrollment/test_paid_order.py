"""Reading a `checkout.order.paid` event: the paid order, its lines, and what can never be enrolled;
the enrollments a paid order yields."""

from __future__ import annotations

import datetime
import uuid

import pytest

from common.consumed import CannotHandle, ConsumedEvent
from enrollment_svc.domain.paid_order import enrollments_for
from enrollment_svc.domain.periods import period_end
from enrollment_svc.workers.order_paid import read_paid_order

TOKEN, USER = str(uuid.uuid4()), str(uuid.uuid4())
INTERNSHIP, PLAN_1, PLAN_2 = (str(uuid.uuid4()) for _ in range(3))
NOW = datetime.datetime(2026, 1, 31, 9, 30, tzinfo=datetime.UTC)


def line(line_no: int, plan_id: str = PLAN_1, value: object = 3, unit: str = "month", **more: object) -> dict:
    return {"line_no": line_no, "internship_id": INTERNSHIP, "plan_id": plan_id, "title": "Backend",
            "period": {"value": value, "unit": unit}, "quantity": 1, "unit_price": "1499.00", **more}


def paid(*lines: dict, **fields: object) -> ConsumedEvent:
    payload = {"order_token": TOKEN.upper(), "user_id": USER, "status": "paid", "previous": "awaiting_payment",
               "payment_token": "pay-token", "currency": "INR", "total": "2998.00", "lines": list(lines),
               "enrollment_ids": [], "occurred_at": "2026-01-31T09:30:00Z", "unknown_field": 1, **fields}
    return ConsumedEvent("checkout.order.paid", payload, "event-1")


def test_a_full_event_is_read_with_every_line():
    order = read_paid_order(paid(line(2, PLAN_2, 1, "year"), line(1)))
    assert order.order_token == TOKEN  # normalised
    assert (order.user_id, order.payment_token) == (USER, "pay-token")
    assert [(x.line_no, x.plan_id, x.period_value, x.period_unit) for x in order.lines] == [
        (1, PLAN_1, 3, "month"), (2, PLAN_2, 1, "year")]  # by line number


def test_each_line_yields_an_enrollment_ending_after_its_own_period():
    order = read_paid_order(paid(line(1, PLAN_1, 1, "month"), line(2, PLAN_2, 6, "month"), line(3, PLAN_1, 1, "year")))
    made = enrollments_for(order, NOW)
    assert [(e.line_no, e.plan_id, e.status, e.user_id, e.order_token) for e in made] == [
        (1, PLAN_1, "active", USER, TOKEN), (2, PLAN_2, "active", USER, TOKEN), (3, PLAN_1, "active", USER, TOKEN)]
    assert {e.starts_at for e in made} == {NOW}
    assert [e.ends_at for e in made] == [datetime.datetime(2026, 2, 28, 9, 30, tzinfo=datetime.UTC),  # clamped
                                         period_end(NOW, 6, "month"), period_end(NOW, 12, "month")]
    assert len({e.enrollment_id for e in made}) == 3


@pytest.mark.parametrize(("event", "reason"), [
    (paid(), "no lines"),
    (paid(line(1, unit="week")), "period unit"),
    (paid(line(1, unit="")), "period unit"),
    (paid(line(1, value=0)), "period value"),
    (paid(line(1, value=37)), "period value"),
    (paid(line(1, plan_id="plan-1")), "plan_id is not a UUID"),
    (paid(line(1, internship_id="")), "internship_id is not a UUID"),
    (paid(line(1), order_token="not-a-uuid"), "order_token is not a UUID"),
    (paid(line(1), order_token=""), "order_token is not a UUID"),
    (paid(line(1), user_id=""), "user_id is not a UUID"),
    (paid(line(0)), "line_no"),
    (paid(line(1), line(1, PLAN_2)), "line numbers repeat"),
    (paid(line(1, value="three")), "not an OrderEvent"),
    (paid(lines="everything"), "not an OrderEvent"),
])
def test_events_that_can_never_be_enrolled_cannot_be_handled(event, reason):
    with pytest.raises(CannotHandle, match=reason):
        read_paid_order(event)


def test_another_subject_cannot_be_handled():
    with pytest.raises(CannotHandle, match="checkout.order.paid"):
        read_paid_order(ConsumedEvent("checkout.order.created", paid(line(1)).payload))
