"""Every line is enrolled: a paid order with three lines yields three enrollments (each with its
own plan and end date) and one `checkout.enrollment.created` listing them; a redelivery yields
none more."""

from __future__ import annotations

import uuid

import pytest

from enrollment_svc.domain.periods import period_end
from tests.support.event_bus import wait_for
from tests.support.paid_orders import (
    PLANS,
    Line,
    audits_of,
    consuming,
    created_events,
    enrollments_of,
    order_paid_json,
    paid_order,
    publish,
)

pytestmark = pytest.mark.timeout(60)


async def test_three_lines_yield_three_enrollments_and_a_redelivery_none_more(enrollment_engine, ns):
    yearly = str(uuid.uuid4())
    order = paid_order(lines=[Line(PLANS[1], 1), Line(PLANS[6], 6), Line(yearly, 1, "year")])
    data = order_paid_json(order)
    await publish(ns, data, correlation="corr-multi-line")
    async with consuming(enrollment_engine, ns) as parts:
        stats = parts.on_order_paid.stats
        await wait_for(lambda: _is(stats.enrolled == 1), 15, "the order enrolled")
        rows = await enrollments_of(enrollment_engine, order.order_token)
        assert [(r.line_no, r.plan_id, r.user_id, r.status) for r in rows] == [
            (1, PLANS[1], order.user_id, "active"), (2, PLANS[6], order.user_id, "active"),
            (3, yearly, order.user_id, "active")]
        starts = rows[0].starts_at
        assert {r.starts_at for r in rows} == {starts}
        assert [r.ends_at for r in rows] == [period_end(starts, 1, "month"), period_end(starts, 6, "month"),
                                             period_end(starts, 12, "month")]
        assert len({r.enrollment_id for r in rows}) == 3

        await publish(ns, data)  # a redelivery (another stream message: the consumer's idempotency, not dedup)
        await wait_for(lambda: _is(stats.already_enrolled == 1), 15, "the redelivery handled")
    assert stats.enrolled == 1
    assert await enrollments_of(enrollment_engine, order.order_token) == rows
    [created] = await created_events(enrollment_engine, order.order_token)
    assert [(e["enrollment_id"], e["plan_id"]) for e in created.payload["enrollments"]] == [
        (r.enrollment_id, r.plan_id) for r in rows]
    audits = await audits_of(enrollment_engine, [r.enrollment_id for r in rows])
    assert sorted((a.entity_id, a.action) for a in audits) == sorted((r.enrollment_id, "created") for r in rows)


async def _is(value: bool) -> bool:
    return value
