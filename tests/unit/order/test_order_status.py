"""The order state machine: every drawn transition allowed, everything else refused with 2102.
(pending → paid: a capture that arrives before the saga recorded the session it paid.)"""

from __future__ import annotations

import itertools

import pytest

from common.errors import CheckoutError
from order_svc.domain.order_status import ALLOWED, can_transition, transition

STATUSES = list(ALLOWED)
LEGAL = {
    ("pending", "awaiting_payment"), ("pending", "paid"), ("pending", "payment_failed"), ("pending", "expired"), ("pending", "cancelled"),
    ("awaiting_payment", "paid"), ("awaiting_payment", "payment_failed"), ("awaiting_payment", "expired"),
    ("awaiting_payment", "cancelled"), ("payment_failed", "awaiting_payment"), ("payment_failed", "paid"),
    ("payment_failed", "expired"), ("payment_failed", "cancelled"), ("paid", "fulfilled"),
    ("paid", "refunded"), ("fulfilled", "refunded"),
}


@pytest.mark.parametrize(("current", "target"), list(itertools.product(STATUSES, STATUSES)))
def test_only_the_drawn_transitions_are_allowed(current: str, target: str) -> None:
    if (current, target) in LEGAL:
        assert transition(current, target) == target
    else:
        assert not can_transition(current, target)
        with pytest.raises(CheckoutError) as caught:
            transition(current, target)
        assert caught.value.code.spec.code == 2102


def test_money_taken_is_never_undone_except_by_a_full_refund() -> None:
    for target in STATUSES:
        assert not can_transition("paid", target) or target in ("fulfilled", "refunded")
        assert not can_transition("fulfilled", target) or target == "refunded"
        assert not can_transition("refunded", target)
