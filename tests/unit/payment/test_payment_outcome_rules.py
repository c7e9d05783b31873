"""The payment rules as tables (payment_svc/domain/payment_status.py, outcome_rules.py,
sessions.py): which way a session's status may move, what a gateway's report does to a session,
how long a session lives and when a new attempt may open. Every expected value is written out by
hand from CONTRACT.md and the diagrams there. (Which order moves follow a capture or a failure is
order_svc's rule now, tested with order_svc.)
"""

from __future__ import annotations

import datetime
import itertools

import pytest

from payment_svc.domain.outcome_rules import PaymentVerdict, Reported, SessionFacts, judge_payment
from payment_svc.domain.payment_status import ALLOWED, can_move
from payment_svc.domain.sessions import AttemptFacts, other_open_attempt, session_expiry

SESSION_STATUSES = ["pending", "captured", "failed", "expired"]


def test_the_tables_below_name_every_status() -> None:
    assert sorted(ALLOWED) == sorted(SESSION_STATUSES)


# -- a session's status ---------------------------------------------------------------------------

LEGAL_MOVES = {
    ("pending", "captured"), ("pending", "failed"), ("pending", "expired"),
    ("failed", "captured"),  # a later successful payment of the same gateway order
    ("expired", "captured"),  # the gateway took the money after our 30 minutes: the money is real
}


@pytest.mark.parametrize(("current", "target"), list(itertools.product([*SESSION_STATUSES, "refunded"], repeat=2)))
def test_a_session_moves_only_forward(current: str, target: str) -> None:
    assert can_move(current, target) is ((current, target) in LEGAL_MOVES)


# -- judge_payment --------------------------------------------------------------------------------

AMOUNT, CURRENCY = 471882, "INR"  # 4718.82 INR
SAME = (AMOUNT, CURRENCY)
ONE_PAISA_LESS = (AMOUNT - 1, CURRENCY)
ONE_PAISA_MORE = (AMOUNT + 1, CURRENCY)
OTHER_CURRENCY = (AMOUNT, "USD")
LOWER_CASE = (AMOUNT, "inr")  # the same currency, spelled as Stripe does

V = PaymentVerdict
JUDGEMENTS = [
    # session status, its payment id, reported status, reported payment id, reported amount, verdict
    # a capture of a session still waiting for money
    ("pending", None, "captured", "pay_1", SAME, V.CAPTURE),
    ("pending", None, "captured", "pay_1", LOWER_CASE, V.CAPTURE),
    ("pending", None, "captured", "pay_1", ONE_PAISA_LESS, V.AMOUNT_MISMATCH),
    ("pending", None, "captured", "pay_1", ONE_PAISA_MORE, V.AMOUNT_MISMATCH),
    ("pending", None, "captured", "pay_1", OTHER_CURRENCY, V.AMOUNT_MISMATCH),
    # a capture after a failure or after our expiry still counts, if it is for the right amount
    ("failed", "pay_0", "captured", "pay_1", SAME, V.CAPTURE),
    ("failed", "pay_1", "captured", "pay_1", SAME, V.CAPTURE),
    ("failed", "pay_0", "captured", "pay_1", ONE_PAISA_LESS, V.AMOUNT_MISMATCH),
    ("failed", "pay_0", "captured", "pay_1", OTHER_CURRENCY, V.AMOUNT_MISMATCH),
    ("expired", None, "captured", "pay_1", SAME, V.CAPTURE),
    ("expired", None, "captured", "pay_1", ONE_PAISA_MORE, V.AMOUNT_MISMATCH),
    # a capture of a session already captured: the same payment is news we have, another is money to give back
    ("captured", "pay_1", "captured", "pay_1", SAME, V.DUPLICATE),
    ("captured", "pay_1", "captured", "pay_1", ONE_PAISA_LESS, V.DUPLICATE),
    ("captured", "pay_1", "captured", "pay_2", SAME, V.SECOND_CAPTURE),
    ("captured", "pay_1", "captured", "pay_2", ONE_PAISA_LESS, V.SECOND_CAPTURE),
    ("captured", "pay_1", "captured", "pay_2", OTHER_CURRENCY, V.SECOND_CAPTURE),
    # a failure: fails only a session still waiting; its amount does not matter
    ("pending", None, "failed", "pay_1", SAME, V.FAIL),
    ("pending", None, "failed", "pay_1", ONE_PAISA_LESS, V.FAIL),
    ("failed", "pay_1", "failed", "pay_1", SAME, V.DUPLICATE),
    ("failed", "pay_1", "failed", "pay_2", SAME, V.IGNORE),
    ("failed", None, "failed", "pay_1", SAME, V.IGNORE),
    ("captured", "pay_1", "failed", "pay_1", SAME, V.IGNORE),
    ("captured", "pay_1", "failed", "pay_2", SAME, V.IGNORE),
    ("expired", None, "failed", "pay_1", SAME, V.IGNORE),
    # pending is no news
    ("pending", None, "pending", "pay_1", SAME, V.IGNORE),
    ("failed", "pay_1", "pending", "pay_1", SAME, V.IGNORE),
    ("expired", None, "pending", "pay_1", SAME, V.IGNORE),
    ("captured", "pay_1", "pending", "pay_1", SAME, V.IGNORE),
]


@pytest.mark.parametrize(("status", "payment_id", "reported_status", "reported_id", "amount", "verdict"), JUDGEMENTS)
def test_judge_payment(status: str, payment_id: str | None, reported_status: str, reported_id: str,
                       amount: tuple[int, str], verdict: PaymentVerdict) -> None:
    session = SessionFacts(status=status, amount_minor=AMOUNT, currency=CURRENCY, gateway_payment_id=payment_id)
    reported = Reported(status=reported_status, gateway_payment_id=reported_id, amount_minor=amount[0], currency=amount[1])
    assert judge_payment(session, reported) is verdict


# -- a session's life and an order's attempts --------------------------------------------------------

NOW = datetime.datetime(2026, 12, 2, 10, 0, tzinfo=datetime.UTC)
MINUTES = datetime.timedelta(minutes=1)
TTL = 30 * MINUTES


@pytest.mark.parametrize(("order_expires_in", "session_ends_in"), [
    (120 * MINUTES, 30 * MINUTES),  # the session's own 30 minutes
    (30 * MINUTES, 30 * MINUTES),
    (10 * MINUTES, 10 * MINUTES),  # never past the order's expiry
    (datetime.timedelta(seconds=1), datetime.timedelta(seconds=1)),
])
def test_a_session_never_outlives_its_order(order_expires_in, session_ends_in) -> None:
    assert session_expiry(NOW, TTL, NOW + order_expires_in) == NOW + session_ends_in


def attempt(number: int, status: str, expires_in: datetime.timedelta = 10 * MINUTES) -> AttemptFacts:
    return AttemptFacts(number, status, NOW + expires_in)


@pytest.mark.parametrize(("opening", "earlier", "blocked_by"), [
    (1, [], None),
    (2, [attempt(1, "pending")], 1),  # attempt 1 may still be paid
    (2, [attempt(1, "failed")], None),
    (2, [attempt(1, "expired")], None),
    (2, [attempt(1, "captured")], None),  # order_svc decides what a second payment means; not ours to block
    (2, [attempt(1, "pending", -MINUTES)], None),  # past its expiry: the sweeper has just not got to it
    (2, [attempt(1, "pending", datetime.timedelta(0))], None),  # expires_at is the end
    (3, [attempt(1, "failed"), attempt(2, "pending")], 2),
    (3, [attempt(1, "pending"), attempt(2, "pending")], 1),
    (3, [attempt(1, "expired"), attempt(2, "failed")], None),
    (1, [attempt(2, "pending")], 2),  # one open session per order, whichever came first
    (4, [attempt(2, "expired"), attempt(3, "pending")], 3),
    (1, [attempt(1, "pending")], None),  # the same attempt again is a retry, not a new attempt
])
def test_one_open_attempt_at_a_time(opening: int, earlier: list[AttemptFacts], blocked_by: int | None) -> None:
    assert other_open_attempt(opening, earlier, NOW) == blocked_by
