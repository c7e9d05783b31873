"""The payment rules as tables (payment_svc/domain/payment_status.py, outcome_rules.py): which way
a session's status may move, what a gateway's report does to a session, and which order moves
follow. Every expected value is written out by hand from CONTRACT.md and the diagrams there.
"""

from __future__ import annotations

import itertools

import pytest

from order_svc.domain.order_status import ALLOWED as ORDER_ALLOWED
from payment_svc.domain.outcome_rules import (
    PaymentVerdict, Reported, SessionFacts, judge_payment, order_path_after_failure, order_path_to_paid, why_unpayable,
)
from payment_svc.domain.payment_status import ALLOWED, can_move

SESSION_STATUSES = ["pending", "captured", "failed", "expired"]
ORDER_STATUSES = ["pending", "awaiting_payment", "payment_failed", "paid", "fulfilled", "expired", "cancelled"]


def test_the_tables_below_name_every_status() -> None:
    assert sorted(ALLOWED) == sorted(SESSION_STATUSES)
    assert sorted(ORDER_ALLOWED) == sorted(ORDER_STATUSES)


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


# -- what follows for the order -------------------------------------------------------------------

@pytest.mark.parametrize(("order_status", "path"), [
    ("pending", ("awaiting_payment", "paid")),  # the capture overtook order_svc's own move: both steps, in order
    ("awaiting_payment", ("paid",)),
    ("payment_failed", ("paid",)),
    ("paid", None),
    ("fulfilled", None),
    ("expired", None),
    ("cancelled", None),
])
def test_order_path_to_paid(order_status: str, path: tuple[str, ...] | None) -> None:
    assert order_path_to_paid(order_status) == path


@pytest.mark.parametrize(("order_status", "latest_attempt", "path"), [
    ("pending", True, ("payment_failed",)),
    ("awaiting_payment", True, ("payment_failed",)),
    ("payment_failed", True, ()),
    ("paid", True, ()),
    ("fulfilled", True, ()),
    ("expired", True, ()),
    ("cancelled", True, ()),
    # an older attempt's failure never fails the order: a newer attempt may be under way
    ("pending", False, ()),
    ("awaiting_payment", False, ()),
    ("payment_failed", False, ()),
    ("paid", False, ()),
    ("fulfilled", False, ()),
    ("expired", False, ()),
    ("cancelled", False, ()),
])
def test_order_path_after_failure(order_status: str, latest_attempt: bool, path: tuple[str, ...]) -> None:
    assert order_path_after_failure(order_status, latest_attempt=latest_attempt) == path


@pytest.mark.parametrize(("order_status", "reason"), [
    ("paid", "the order was already paid by another payment: refund this one"),
    ("fulfilled", "the order was already paid by another payment: refund this one"),
    ("expired", "the order is expired: refund this payment or reinstate the order by hand"),
    ("cancelled", "the order is cancelled: refund this payment or reinstate the order by hand"),
])
def test_why_a_captured_payment_cannot_pay_its_order(order_status: str, reason: str) -> None:
    assert why_unpayable(order_status) == reason
