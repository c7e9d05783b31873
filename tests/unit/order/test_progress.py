"""What payment and enrollment events do to an order (order_svc/progress.py, with fakes), and the
consumers' parsing (order_svc/workers/consumers.py): each move once, with its audit row and
event; duplicates change nothing; money for an order that cannot take it is flagged."""

from __future__ import annotations

import dataclasses
import uuid
from decimal import Decimal
from typing import Any

import pytest

from common.consumed import CannotHandle, ConsumedEvent, RetryLater
from order_svc.progress import PaymentOutcome
from order_svc.workers import consumers
from tests.unit.order.fakes import ORDER_TTL, World, world
from tests.unit.order.test_place_order import as_user, new_user, place


async def placed(w: World) -> Any:
    user = new_user()
    view = await place(w, user, w.cart.add_cart(user_id=user))
    return w.repository.orders[view.order_token]


def outcome(order: Any, *, status: str = "captured", attempt: int = 1, token: str | None = None,
            amount: str | None = None, currency: str | None = None) -> PaymentOutcome:
    return PaymentOutcome(order_token=order.order_token, payment_token=token or order.payment_token, attempt=attempt,
                          status=status, amount=Decimal(amount or f"{order.total:.2f}"),
                          currency=currency or order.currency, gateway="razorpay", gateway_payment_id="pay_1",
                          source="webhook")


# -- captured -----------------------------------------------------------------------------------------

async def test_a_capture_pays_the_order_once_and_tells_enrollment_what_was_bought() -> None:
    w = world()
    order = await placed(w)

    assert await w.progress.payment_captured(outcome(order)) == "paid"
    assert await w.progress.payment_captured(outcome(order)) == "duplicate"

    paid = w.repository.orders[order.order_token]
    assert paid.status == "paid" and paid.payment_token == order.payment_token
    assert paid.payment is not None and paid.payment["status"] == "captured"
    assert paid.payment["checkout_url"] == order.payment["checkout_url"]  # what the event did not say is kept
    [event] = w.events("checkout.order.paid")
    assert event.payload["user_id"] == order.user_id and event.payload["payment_token"] == order.payment_token
    assert [entry["plan_id"] for entry in event.payload["lines"]] == [entry["plan_id"] for entry in order.items]
    assert [a.action for a in w.audits(order.order_token)][-1] == "status:paid"
    assert len([a for a in w.audits(order.order_token) if a.action == "status:paid"]) == 1


@pytest.mark.parametrize("status", ["pending", "payment_failed"])
async def test_a_capture_pays_an_order_that_is_still_unpaid_in_any_way(status: str) -> None:
    w = world()
    order = await placed(w)
    await w.repository.update_order(None, order.order_token, status=status)

    assert await w.progress.payment_captured(outcome(order)) == "paid"
    assert w.repository.orders[order.order_token].status == "paid"


@pytest.mark.parametrize("status", ["expired", "cancelled"])
async def test_money_for_an_order_that_can_no_longer_be_paid_is_flagged_once(status: str) -> None:
    w = world()
    order = await placed(w)
    await w.repository.update_order(None, order.order_token, status=status)

    assert await w.progress.payment_captured(outcome(order)) == "flagged"
    assert await w.progress.payment_captured(outcome(order)) == "duplicate"

    assert w.repository.orders[order.order_token].status == status
    [flag] = [a for a in w.audits(order.order_token) if a.action == "payment_flagged"]
    assert flag.flagged and flag.after["payment_token"] == order.payment_token and status in flag.after["reason"]
    [event] = w.events("checkout.order.payment_flagged")
    assert event.payload["payment_token"] == order.payment_token and event.payload["status"] == status


async def test_a_second_payment_for_a_paid_order_and_a_wrong_amount_are_flagged() -> None:
    w = world()
    order = await placed(w)
    await w.progress.payment_captured(outcome(order))
    other = str(uuid.uuid4())

    assert await w.progress.payment_captured(outcome(order, token=other, attempt=2)) == "flagged"
    fresh = await placed(w)
    assert await w.progress.payment_captured(outcome(fresh, amount="1.00")) == "flagged"
    assert await w.progress.payment_captured(outcome(fresh, amount="1.00")) == "duplicate"  # that payment, once
    assert await w.progress.payment_captured(outcome(fresh, currency="USD", token=other)) == "flagged"

    assert w.repository.orders[order.order_token].payment_token == order.payment_token
    assert w.repository.orders[fresh.order_token].status == "awaiting_payment"
    assert len(w.events("checkout.order.payment_flagged")) == 3


async def test_an_event_for_an_order_not_there_yet_is_retried_later() -> None:
    w = world()
    order = await placed(w)
    missing = dataclasses.replace(outcome(order), order_token=str(uuid.uuid4()))
    with pytest.raises(RetryLater):
        await w.progress.payment_captured(missing)
    with pytest.raises(RetryLater):
        await w.progress.payment_failed(missing)
    with pytest.raises(RetryLater):
        await w.progress.enrollments_created(missing.order_token, [str(uuid.uuid4())])


# -- failed and expired -----------------------------------------------------------------------------------

async def test_a_failure_of_the_latest_attempt_makes_the_order_payment_failed() -> None:
    w = world()
    order = await placed(w)

    assert await w.progress.payment_failed(outcome(order, status="failed")) == "payment_failed"
    assert await w.progress.payment_failed(outcome(order, status="failed")) == "duplicate"

    failed = w.repository.orders[order.order_token]
    assert failed.status == "payment_failed" and failed.payment is not None and failed.payment["status"] == "failed"
    assert len(w.events("checkout.order.payment_failed")) == 1


async def test_a_failure_of_an_older_attempt_changes_nothing() -> None:
    w = world()
    order = await placed(w)
    await w.progress.payment_failed(outcome(order, status="failed"))
    w.payments.set_status(order.order_token, 1, "failed")
    with as_user(order.user_id):
        second = await w.service.new_attempt(order.order_token, "")
    before = w.repository.orders[order.order_token]

    assert await w.progress.payment_failed(outcome(order, status="failed", attempt=1)) == "ignored"
    assert await w.progress.payment_expired(outcome(order, status="expired", attempt=1)) == "ignored"

    assert w.repository.orders[order.order_token] == before
    assert before.status == "awaiting_payment" and before.payment_token == second.payment_token


async def test_a_failure_before_the_saga_recorded_the_session_still_counts() -> None:
    w = world()
    order = await placed(w)
    await w.repository.update_order(None, order.order_token, status="pending", payment_attempt=0, payment_token=None,
                                    payment=None)

    assert await w.progress.payment_failed(outcome(order, status="failed")) == "payment_failed"
    assert w.repository.orders[order.order_token].payment_token == order.payment_token


async def test_an_expired_session_only_updates_the_view() -> None:
    w = world()
    order = await placed(w)

    assert await w.progress.payment_expired(outcome(order, status="expired")) == "view_updated"
    assert await w.progress.payment_expired(outcome(order, status="expired")) == "duplicate"

    after = w.repository.orders[order.order_token]
    assert after.status == "awaiting_payment" and after.payment is not None and after.payment["status"] == "expired"
    assert w.subjects(order.order_token) == ["checkout.order.created", "checkout.order.awaiting_payment"]


async def test_a_late_failure_does_not_touch_a_paid_order() -> None:
    w = world()
    order = await placed(w)
    await w.progress.payment_captured(outcome(order))

    assert await w.progress.payment_failed(outcome(order, status="failed")) == "ignored"
    assert w.repository.orders[order.order_token].payment["status"] == "captured"  # type: ignore[index]


# -- enrollments ------------------------------------------------------------------------------------------

async def test_enrollments_fulfil_a_paid_order_once() -> None:
    w = world()
    order = await placed(w)
    await w.progress.payment_captured(outcome(order))
    ids = [str(uuid.uuid4()), str(uuid.uuid4())]

    assert await w.progress.enrollments_created(order.order_token, ids) == "fulfilled"
    assert await w.progress.enrollments_created(order.order_token, ids) == "duplicate"

    assert w.repository.orders[order.order_token].enrollment_ids == ids
    [event] = w.events("checkout.order.fulfilled")
    assert event.payload["enrollment_ids"] == ids and event.payload["previous"] == "paid"
    with as_user(order.user_id):
        assert (await w.service.get_order(order.order_token)).enrollment_id == ids[0]


async def test_enrollments_for_an_unpaid_order_wait_and_for_a_dead_one_are_parked() -> None:
    w = world()
    order = await placed(w)
    with pytest.raises(RetryLater):
        await w.progress.enrollments_created(order.order_token, [str(uuid.uuid4())])
    await w.repository.update_order(None, order.order_token, status="expired")
    with pytest.raises(CannotHandle):
        await w.progress.enrollments_created(order.order_token, [str(uuid.uuid4())])


# -- the consumers' parsing ------------------------------------------------------------------------------

def payment_event(order: Any, subject: str = consumers.CAPTURED, **fields: Any) -> ConsumedEvent:
    payload = {"payment_token": order.payment_token, "order_token": order.order_token, "user_id": order.user_id,
               "attempt": 1, "gateway": "razorpay", "status": subject.rsplit(".", 1)[1],
               "amount": f"{order.total:.2f}", "currency": order.currency, "source": "webhook",
               "some_future_field": "ignored"} | fields
    return ConsumedEvent(subject, payload, str(uuid.uuid4()))


async def test_the_payment_consumer_dispatches_by_subject() -> None:
    w = world()
    handle = consumers.payment_handler(w.progress)
    first, second = await placed(w), await placed(w)

    assert await handle(payment_event(first)) == "paid"
    assert await handle(payment_event(second, consumers.FAILED)) == "payment_failed"
    assert await handle(payment_event(second, consumers.EXPIRED)) == "view_updated"


@pytest.mark.parametrize("fields", [{"order_token": "nope"}, {"payment_token": ""}, {"amount": "-1"},
                                    {"amount": "1.234"}, {"attempt": 0}, {"attempt": "many"}])
async def test_a_payment_event_that_can_never_apply_is_parked(fields: dict[str, Any]) -> None:
    w = world()
    order = await placed(w)
    with pytest.raises(CannotHandle):
        await consumers.payment_handler(w.progress)(payment_event(order, **fields))


async def test_an_event_of_a_subject_the_consumer_does_not_name_is_ignored() -> None:
    # a NATS server before 2.10 ignores filter_subjects and delivers the whole stream
    w = world()
    order = await placed(w)
    before = w.repository.orders[order.order_token]
    created = ConsumedEvent("checkout.order.created", {"order_token": order.order_token, "lines": []})
    assert await consumers.payment_handler(w.progress)(payment_event(order, "checkout.payment.flagged")) == "ignored"
    assert await consumers.payment_handler(w.progress)(created) == "ignored"
    assert await consumers.enrollment_handler(w.progress)(created) == "ignored"
    assert await consumers.enrollment_handler(w.progress)(payment_event(order)) == "ignored"
    assert w.repository.orders[order.order_token] == before


async def test_the_enrollment_consumer_reads_every_enrollment_of_the_order() -> None:
    w = world()
    order = await placed(w)
    await w.progress.payment_captured(outcome(order))
    ids = [str(uuid.uuid4()), str(uuid.uuid4())]
    handle = consumers.enrollment_handler(w.progress)
    payload = {"order_token": order.order_token, "user_id": order.user_id,
               "enrollments": [{"enrollment_id": i, "order_token": order.order_token, "status": "active"} for i in ids]}

    assert await handle(ConsumedEvent(consumers.ENROLLED, payload)) == "fulfilled"
    with pytest.raises(CannotHandle):
        await handle(ConsumedEvent(consumers.ENROLLED, payload | {"enrollments": []}))
    with pytest.raises(CannotHandle):
        await handle(ConsumedEvent(consumers.ENROLLED, payload | {"enrollments": [{"enrollment_id": "x"}]}))
    assert w.repository.orders[order.order_token].enrollment_ids == ids


# -- expiry -------------------------------------------------------------------------------------------------

async def test_unpaid_orders_past_their_expiry_expire_in_batches_and_paid_ones_never() -> None:
    w = world()
    unpaid = [await placed(w) for _ in range(3)]
    paid = await placed(w)
    await w.progress.payment_captured(outcome(paid))
    await w.progress.payment_failed(outcome(unpaid[0], status="failed"))

    assert await w.expiry.one_pass() == []
    w.clock.advance(seconds=ORDER_TTL.total_seconds())
    assert sorted(await w.expiry.one_pass()) == sorted(o.order_token for o in unpaid)  # batch of 2: two rounds
    assert await w.expiry.one_pass() == []

    assert {w.repository.orders[o.order_token].status for o in unpaid} == {"expired"}
    assert w.repository.orders[paid.order_token].status == "paid"
    assert [e.payload["previous"] for e in w.events("checkout.order.expired")].count("payment_failed") == 1
