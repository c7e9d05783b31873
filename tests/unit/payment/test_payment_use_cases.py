"""payment_svc's use cases with an in-memory unit of work (tests/support/fake_uow.py) and
repository (fakes.py): what each records — the session's change, one audit row, one event — and
what it refuses before touching anything."""

from __future__ import annotations

import datetime
import uuid
from decimal import Decimal

import pytest

from common.errors import CheckoutError
from payment_svc.commands import open_session_command
from payment_svc.open_session import SessionOpener
from payment_svc.outcomes import GatewayReport, apply_payment_outcome
from payment_svc.tuning import SessionTuning
from payment_svc.workers.sweeper import SessionSweeper
from tests.support.fake_uow import FakeUnitOfWork
from tests.unit.payment.fakes import FakeGateway, InMemoryPayments

NOW = datetime.datetime(2026, 12, 2, 10, 0, tzinfo=datetime.UTC)
MINUTES = datetime.timedelta(minutes=1)


def clock() -> datetime.datetime:
    return NOW


@pytest.fixture
def payments() -> InMemoryPayments:
    return InMemoryPayments(clock)


@pytest.fixture
def uow() -> FakeUnitOfWork:
    return FakeUnitOfWork()


def subjects(uow: FakeUnitOfWork) -> list[str]:
    return [event.subject for event in uow.published]


def actions(uow: FakeUnitOfWork) -> list[tuple[str, bool]]:
    return [(audit.action, audit.flagged) for audit in uow.audited]


async def report(uow: FakeUnitOfWork, payments: InMemoryPayments, gateway_order_id: str, status: str = "captured", *,
                 payment_id: str = "pay_A", amount_minor: int = 177000, currency: str = "INR"):
    async with uow:
        result = await apply_payment_outcome(
            uow, payments, GatewayReport("razorpay", gateway_order_id, payment_id, status, amount_minor, currency),
            source="webhook", actor="test", now=NOW)
        await uow.commit()
    return result


# -- apply_payment_outcome ----------------------------------------------------------------------------

async def test_a_capture_changes_the_session_once_with_one_audit_row_and_one_event(uow, payments):
    session = payments.add()
    first = await report(uow, payments, session.gateway_order_id)
    again = await report(uow, payments, session.gateway_order_id)

    assert (first.kind, first.changed, again.kind, again.changed) == ("captured", True, "duplicate", False)
    assert payments.sessions[session.token].status == "captured"
    assert actions(uow) == [("status:captured", False)]
    [event] = uow.published
    assert (event.subject, event.aggregate_id) == ("checkout.payment.captured", session.order_token)
    assert {key: event.payload[key] for key in ("payment_token", "user_id", "attempt", "status", "amount", "source")} == {
        "payment_token": session.token, "user_id": session.user_id, "attempt": 1, "status": "captured",
        "amount": "1770.00", "source": "webhook"}


async def test_a_failure_and_a_later_capture_are_two_changes(uow, payments):
    session = payments.add()
    await report(uow, payments, session.gateway_order_id, "failed", payment_id="pay_F")
    await report(uow, payments, session.gateway_order_id, "captured", payment_id="pay_OK")
    late = await report(uow, payments, session.gateway_order_id, "failed", payment_id="pay_F2")
    assert (late.kind, late.changed) == ("ignored", False)
    assert subjects(uow) == ["checkout.payment.failed", "checkout.payment.captured"]
    assert actions(uow) == [("status:failed", False), ("status:captured", False)]


async def test_money_that_does_not_match_is_flagged_and_changes_nothing(uow, payments):
    session = payments.add()
    result = await report(uow, payments, session.gateway_order_id, amount_minor=100)
    assert (result.kind, result.flagged, result.changed) == ("flagged", True, False)
    assert payments.sessions[session.token].status == "pending"
    assert actions(uow) == [("outcome:flagged", True)]
    [event] = uow.published
    assert event.subject == "checkout.payment.flagged" and "captured 1.00 INR" in event.payload["reason"]


async def test_an_unknown_gateway_order_is_audited_not_published(uow, payments):
    result = await report(uow, payments, "order_Unknown")
    assert (result.kind, result.flagged) == ("unknown_session", True)
    assert actions(uow) == [("outcome:unknown_session", True)] and uow.published == []


# -- OpenSession ---------------------------------------------------------------------------------------

def opener(uow: FakeUnitOfWork, payments: InMemoryPayments, gateway: FakeGateway) -> SessionOpener:
    return SessionOpener(lambda: uow, payments, {"razorpay": gateway, "stripe": gateway},
                         SessionTuning(session_ttl_s=30 * 60), clock=clock)


def command(order_token: str, *, attempt: int = 1, order_expires_at: datetime.datetime = NOW + 120 * MINUTES):
    return open_session_command(order_token=order_token, attempt=attempt, amount="1770.00", currency="INR",
                                gateway="", user_id=str(uuid.uuid4()), order_expires_at=order_expires_at.isoformat())


async def test_open_session_records_one_change_and_caps_the_expiry_at_the_orders(uow, payments):
    gateway = FakeGateway()
    order = str(uuid.uuid4())
    session = await opener(uow, payments, gateway).open(command(order, order_expires_at=NOW + 10 * MINUTES))
    assert (session.status, session.expires_at, session.amount) == ("pending", NOW + 10 * MINUTES, Decimal("1770.00"))
    assert gateway.creates == [(f"{order}:1", 177000, "INR")]
    assert subjects(uow) == ["checkout.payment.session_opened"] and actions(uow) == [("session_opened", False)]

    other = await opener(uow, payments, gateway).open(command(str(uuid.uuid4())))
    assert other.expires_at == NOW + 30 * MINUTES


async def test_open_session_refuses_a_second_open_attempt_and_an_expired_order(uow, payments):
    gateway = FakeGateway()
    order = str(uuid.uuid4())
    payments.add(order_token=order, attempt=1, status="pending", expires_at=NOW + 5 * MINUTES)
    with pytest.raises(CheckoutError) as refused:
        await opener(uow, payments, gateway).open(command(order, attempt=2))
    assert refused.value.code.spec.code == 2102 and "(attempt 1)" in refused.value.message
    with pytest.raises(CheckoutError) as expired:
        await opener(uow, payments, gateway).open(command(str(uuid.uuid4()), order_expires_at=NOW))
    assert expired.value.code.spec.code == 2102
    assert gateway.creates == [] and uow.published == [] and uow.audited == [] and len(payments.sessions) == 1


@pytest.mark.parametrize("status", ["failed", "expired", "captured"])
async def test_open_session_opens_attempt_2_after_attempt_1_ended(uow, payments, status):
    order = str(uuid.uuid4())
    payments.add(order_token=order, attempt=1, status=status)
    session = await opener(uow, payments, FakeGateway()).open(command(order, attempt=2))
    assert (session.attempt, session.status) == (2, "pending")


# -- the sweeper ----------------------------------------------------------------------------------------

async def test_the_sweeper_expires_each_overdue_session_with_one_audit_row_and_one_event(uow, payments):
    overdue = [payments.add(expires_at=NOW - MINUTES) for _ in range(3)]
    payments.add(expires_at=NOW + MINUTES)
    payments.add(expires_at=NOW - MINUTES, status="captured")
    report = await SessionSweeper(lambda: uow, payments, batch=2).sweep_once(now=NOW)
    assert report.sessions_expired == 3
    assert sorted(e.payload["payment_token"] for e in uow.published) == sorted(s.token for s in overdue)
    assert set(subjects(uow)) == {"checkout.payment.expired"} and actions(uow) == [("status:expired", False)] * 3


async def test_a_retry_of_an_attempt_that_never_opened_is_refused_once_its_time_is_up(uow, payments):
    """The attempt's row exists (both gateways were down); by the retry, its time or its order's ran out."""
    gateway = FakeGateway()
    late, gone = str(uuid.uuid4()), str(uuid.uuid4())
    payments.add(order_token=late, gateway_order_id=None, checkout_url=None, expires_at=NOW - MINUTES)
    payments.add(order_token=gone, gateway_order_id=None, checkout_url=None, order_expires_at=NOW - MINUTES)
    with pytest.raises(CheckoutError) as expired:
        await opener(uow, payments, gateway).open(command(late))
    with pytest.raises(CheckoutError) as unpayable:
        await opener(uow, payments, gateway).open(command(gone))
    assert (expired.value.code.spec.code, unpayable.value.code.spec.code) == (3003, 2102)
    assert gateway.creates == [] and uow.published == []
