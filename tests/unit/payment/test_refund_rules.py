"""Refund rules, decided without I/O (payment_svc/domain/refunds.py): the amount asked for, what is
left to refund, the status machine, the request fingerprint. Expectations computed by hand."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest

from common.errors import CheckoutError
from payment_svc.domain.refunds import (
    ALLOWED,
    amount_to_refund,
    can_move,
    check_amount,
    is_fully_refunded,
    judge_settlement,
    left_to_refund,
    request_fingerprint,
)

D = Decimal


@pytest.mark.parametrize(("text", "value"), [("", None), ("1", D("1.00")), ("100.5", D("100.50")),
                                             ("1768.82", D("1768.82")), ("0.01", D("0.01"))])
def test_good_amounts(text: str, value: Decimal | None) -> None:
    problems: list[str] = []
    assert check_amount(problems, text) == value and problems == []


@pytest.mark.parametrize("text", ["0", "0.00", "-1", "+1", "1.234", "1e3", "1,5", " 10", "10 ", "abc", ".5", "5.",
                                  "NaN", "१०", "1000000000000"])
def test_bad_amounts_name_the_field(text: str) -> None:
    problems: list[str] = []
    assert check_amount(problems, text) is None
    assert len(problems) == 1 and problems[0].startswith("amount: "), problems


@pytest.mark.parametrize(("captured", "held", "left"), [
    ("1768.82", "0", "1768.82"), ("1768.82", "768.80", "1000.02"), ("1768.82", "1768.82", "0.00"),
    ("100.00", "150.00", "0.00"),  # a gateway-made refund past what we knew: never negative
])
def test_left_to_refund(captured: str, held: str, left: str) -> None:
    assert left_to_refund(D(captured), D(held)) == D(left)


def test_the_default_amount_is_all_that_is_left() -> None:
    assert amount_to_refund(None, D("1768.82"), D("500.00"), "INR") == D("1268.82")


def test_exactly_what_is_left_is_allowed_and_a_paisa_more_is_3301() -> None:
    assert amount_to_refund(D("1268.82"), D("1768.82"), D("500.00"), "INR") == D("1268.82")
    with pytest.raises(CheckoutError) as caught:
        amount_to_refund(D("1268.83"), D("1768.82"), D("500.00"), "INR")
    assert caught.value.code.spec.code == 3301 and "1268.82" in caught.value.message


@pytest.mark.parametrize("requested", [None, D("0.01")])
def test_nothing_left_is_3301(requested: Decimal | None) -> None:
    with pytest.raises(CheckoutError) as caught:
        amount_to_refund(requested, D("1768.82"), D("1768.82"), "INR")
    assert caught.value.code.spec.code == 3301


def test_the_status_machine_only_moves_pending_forward() -> None:
    legal = {("pending", "processed"), ("pending", "failed")}
    for current, target in itertools.product(ALLOWED, ALLOWED):
        assert can_move(current, target) == ((current, target) in legal), (current, target)


@pytest.mark.parametrize(("current", "reported", "verdict"), [
    ("pending", "processed", "settle"), ("pending", "failed", "settle"), ("pending", "pending", "duplicate"),
    ("processed", "processed", "duplicate"), ("failed", "failed", "duplicate"), ("processed", "pending", "duplicate"),
    ("processed", "failed", "conflict"), ("failed", "processed", "conflict"),
])
def test_judge_settlement(current: str, reported: str, verdict: str) -> None:
    assert judge_settlement(current, reported) == verdict


def test_fully_refunded() -> None:
    assert is_fully_refunded(D("1768.82"), D("1768.82"))
    assert not is_fully_refunded(D("1768.82"), D("1768.81"))
    assert not is_fully_refunded(D("0.00"), D("0.00"))


def test_the_fingerprint_is_the_order_amount_and_reason() -> None:
    base = request_fingerprint("o", "100.00", "r")
    assert base == request_fingerprint("o", "100.00", "r")
    assert len({base, request_fingerprint("p", "100.00", "r"), request_fingerprint("o", "100.01", "r"),
                request_fingerprint("o", "100.00", "s"), request_fingerprint("o", "", "r")}) == 5
