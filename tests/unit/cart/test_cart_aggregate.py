"""The cart aggregate's rules, without any I/O."""

from __future__ import annotations

import datetime
import uuid
from decimal import Decimal

import pytest

from cart_svc.domain.cart import MAX_LINES, Cart, PlanRef
from common.errors import CheckoutError, ErrorCode

NOW = datetime.datetime(2026, 11, 26, 12, 0, tzinfo=datetime.UTC)
TTL = datetime.timedelta(hours=24)


def plan(internship: str = "i1", months: int = 1, plan_id: str | None = None) -> PlanRef:
    return PlanRef(plan_id or str(uuid.uuid4()), internship, "Title", months, "month", Decimal("100.00"))


def cart() -> Cart:
    return Cart.new(user_id=None, currency="INR", now=NOW, ttl=TTL)


def code_of(call) -> ErrorCode:
    with pytest.raises(CheckoutError) as caught:
        call()
    return caught.value.code


def test_new_cart_is_draft_and_becomes_active_with_a_line() -> None:
    c = cart()
    assert c.status == "draft"
    c.add(plan(), 1, NOW, TTL)
    assert c.status == "active"


def test_same_plan_combines_and_is_capped() -> None:
    c, p = cart(), plan()
    c.add(p, 6, NOW, TTL)
    c.add(p, 4, NOW, TTL)
    assert [line.quantity for line in c.lines] == [10]
    assert code_of(lambda: c.add(p, 1, NOW, TTL)) is ErrorCode.VALIDATION_FAILED


def test_at_most_twenty_lines() -> None:
    c = cart()
    for _ in range(MAX_LINES):
        c.add(plan(), 1, NOW, TTL)
    assert code_of(lambda: c.add(plan(), 1, NOW, TTL)) is ErrorCode.VALIDATION_FAILED


def test_every_change_renews_the_expiry() -> None:
    c = cart()
    later = NOW + datetime.timedelta(hours=5)
    c.add(plan(), 1, later, TTL)
    assert c.expires_at == later + TTL


def test_expired_and_converted_carts_refuse_changes() -> None:
    c = cart()
    assert code_of(lambda: c.add(plan(), 1, NOW + TTL, TTL)) is ErrorCode.CART_EXPIRED
    c.status = "converted"
    assert code_of(lambda: c.add(plan(), 1, NOW, TTL)) is ErrorCode.CART_CONVERTED


def test_switch_plan_keeps_the_internship() -> None:
    c, one = cart(), plan("i1", 1)
    c.add(one, 1, NOW, TTL)
    c.switch_plan(None, plan("i1", 3), NOW, TTL)
    assert c.lines[0].plan.period_value == 3
    assert code_of(lambda: c.switch_plan(None, plan("i2", 3), NOW, TTL)) is ErrorCode.VALIDATION_FAILED


def test_switch_without_item_id_needs_exactly_one_line() -> None:
    c = cart()
    c.add(plan("i1"), 1, NOW, TTL)
    c.add(plan("i2"), 1, NOW, TTL)
    assert code_of(lambda: c.switch_plan(None, plan("i1", 3), NOW, TTL)) is ErrorCode.VALIDATION_FAILED


def test_remove_unknown_item_is_1005() -> None:
    assert code_of(lambda: cart().remove(str(uuid.uuid4()), NOW, TTL)) is ErrorCode.ITEM_NOT_FOUND


def test_claim_refuses_another_users_cart() -> None:
    c = cart()
    c.claim("u1", NOW, TTL)
    assert code_of(lambda: c.claim("u2", NOW, TTL)) is ErrorCode.NOT_ALLOWED


def test_absorb_combines_lines_capped_and_keeps_distinct_ones() -> None:
    shared = plan("i1")
    mine, guest = cart(), cart()
    mine.add(shared, 8, NOW, TTL)
    guest.add(shared, 5, NOW, TTL)
    guest.add(plan("i2"), 2, NOW, TTL)
    mine.absorb(guest, NOW, TTL)
    assert sorted(line.quantity for line in mine.lines) == [2, 10]


def test_sweeping_marks_only_due_open_carts() -> None:
    c = cart()
    assert not c.expire_if_due(NOW)
    assert c.expire_if_due(NOW + TTL) and c.status == "expired"
