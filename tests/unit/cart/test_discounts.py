from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cart_svc.domain.coupons import Coupon, CouponReason, check_coupon
from cart_svc.domain.currency import INR, ExchangeRate
from cart_svc.domain.lines import LineToPrice, PricedLine
from cart_svc.domain.pricing import price_lines
from common.money import from_minor_units

PROPERTY = settings(max_examples=300, deadline=None, database=None)
D = Decimal
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
USD = ExchangeRate("USD", D("0.012"))


def priced(*lines: tuple[str, str, int], rate: ExchangeRate = INR) -> tuple[PricedLine, ...]:
    return price_lines([LineToPrice(i, f"{i}-plan", D(p), q) for i, p, q in lines], rate, None, NOW)


def coupon(**overrides: Any) -> Coupon:
    fields: dict[str, Any] = {"code": "SAVE10", "kind": "percent", "value": D("10")} | overrides
    return Coupon(**fields)


CART = priced(("data", "1234.45", 1), ("web", "1000.00", 2))  # subtotal 3234.45


def test_percent_applies_to_eligible_lines_only_and_rounds_half_up() -> None:
    verdict = check_coupon(coupon(internship_ids=frozenset({"data"})), CART, NOW)
    assert verdict.applicable and verdict.reasons == ()
    assert verdict.eligible_amount == D("1234.45")
    assert verdict.amount == D("123.45")  # 123.445 half-up


def test_percent_without_scope_covers_the_whole_cart() -> None:
    assert check_coupon(coupon(), CART, NOW).amount == D("323.45")  # 323.445


def test_fixed_is_capped_at_the_eligible_amount() -> None:
    small = check_coupon(coupon(kind="fixed", value=D("500.00"), internship_ids=["data"]), CART, NOW)
    big = check_coupon(coupon(kind="fixed", value=D("5000.00"), internship_ids=["data"]), CART, NOW)
    assert (small.amount, big.amount) == (D("500.00"), D("1234.45"))


def test_fixed_inr_coupon_is_converted_to_the_cart_currency() -> None:
    usd_cart = priced(("data", "1499.00", 1), rate=USD)  # 17.99 USD
    verdict = check_coupon(coupon(kind="fixed", value=D("500.00")), usd_cart, NOW, rate=USD)
    assert verdict.amount == D("6.00")


def test_fixed_coupon_in_the_cart_currency_is_used_as_is_and_others_refused() -> None:
    usd_cart = priced(("data", "1499.00", 1), rate=USD)
    assert check_coupon(coupon(kind="fixed", value=D("5.00"), currency="USD"), usd_cart, NOW, rate=USD).amount == D(
        "5.00"
    )
    eur = ExchangeRate("EUR", D("0.011"))
    verdict = check_coupon(
        coupon(kind="fixed", value=D("5.00"), currency="USD"), priced(("data", "1499.00", 1), rate=eur), NOW, rate=eur
    )
    assert verdict.reasons == (CouponReason.CURRENCY_MISMATCH,) and verdict.amount == D("0.00")


@pytest.mark.parametrize(
    ("overrides", "user_redemptions", "reason"),
    [
        ({"starts_at": NOW + HOUR}, 0, CouponReason.NOT_STARTED),
        ({"ends_at": NOW - HOUR}, 0, CouponReason.EXPIRED),
        ({"ends_at": NOW}, 0, CouponReason.EXPIRED),  # the end instant is already outside
        ({"max_redemptions": 5, "redeemed_count": 5}, 0, CouponReason.LIMIT_REACHED),
        ({"max_redemptions_per_user": 1}, 1, CouponReason.USER_LIMIT_REACHED),
        ({"min_subtotal": D("3234.46")}, 0, CouponReason.BELOW_MINIMUM),
        ({"internship_ids": frozenset({"design"})}, 0, CouponReason.NO_ELIGIBLE_ITEMS),
    ],
)
def test_each_failure_has_its_reason(overrides: dict[str, Any], user_redemptions: int, reason: CouponReason) -> None:
    verdict = check_coupon(coupon(**overrides), CART, NOW, user_redemptions)
    assert (verdict.applicable, verdict.reasons, verdict.amount) == (False, (reason,), D("0.00"))


@pytest.mark.parametrize(
    "overrides",
    [
        {"starts_at": NOW},
        {"ends_at": NOW + HOUR},
        {"max_redemptions": 5, "redeemed_count": 4},
        {"max_redemptions": 0, "redeemed_count": 999},
        {"min_subtotal": D("3234.45")},
    ],
)
def test_boundaries_that_still_apply(overrides: dict[str, Any]) -> None:
    assert check_coupon(coupon(**overrides), CART, NOW).applicable


def test_all_reasons_are_reported_together() -> None:
    bad = coupon(
        ends_at=NOW - HOUR,
        max_redemptions=1,
        redeemed_count=1,
        max_redemptions_per_user=2,
        min_subtotal=D("99999.00"),
        internship_ids=frozenset({"design"}),
    )
    assert set(check_coupon(bad, CART, NOW, user_redemptions=2).reasons) == set(CouponReason) - {
        CouponReason.NOT_STARTED,
        CouponReason.CURRENCY_MISMATCH,
    }


def test_empty_cart_has_nothing_eligible_and_is_below_any_minimum() -> None:
    assert check_coupon(coupon(min_subtotal=D("1.00")), (), NOW).reasons == (
        CouponReason.BELOW_MINIMUM,
        CouponReason.NO_ELIGIBLE_ITEMS,
    )


def test_min_subtotal_is_judged_in_inr() -> None:
    usd_cart = priced(("data", "1499.00", 1), rate=USD)  # 17.99 USD, 1499.00 INR
    assert check_coupon(coupon(min_subtotal=D("1499.00")), usd_cart, NOW, rate=USD).applicable
    assert not check_coupon(coupon(min_subtotal=D("1499.01")), usd_cart, NOW, rate=USD).applicable


@pytest.mark.parametrize(
    "overrides",
    [
        {"kind": "percent", "value": D("100.01")},
        {"value": D("0")},
        {"value": D("-5")},
        {"kind": "fixed", "value": D("1.005")},
        {"kind": "bogo"},
        {"code": ""},
        {"currency": "JPY"},
        {"min_subtotal": D("-1")},
        {"redeemed_count": -1},
        {"starts_at": datetime(2026, 1, 1)},
        {"starts_at": NOW, "ends_at": NOW},
        {"internship_ids": "data"},
    ],
)
def test_invalid_coupons_are_refused(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        coupon(**overrides)


def test_description() -> None:
    assert coupon(value=D("12.50")).description == "12.5% off"
    assert coupon(kind="fixed", value=D("500")).description == "500.00 INR off"


cart_lines = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "c"]),
        st.integers(0, 10**7).map(lambda m: str(from_minor_units(m))),
        st.integers(1, 5),
    ),
    max_size=5,
)
coupons = st.builds(
    lambda kind_value, ids: coupon(kind=kind_value[0], value=kind_value[1], internship_ids=ids),
    st.one_of(
        st.tuples(st.just("percent"), st.decimals(D("0.01"), D("100"), places=2)),
        st.tuples(st.just("fixed"), st.integers(1, 10**8).map(from_minor_units)),
    ),
    st.frozensets(st.sampled_from(["a", "b", "c"])),
)


@PROPERTY
@given(cart_lines, coupons)
def test_discount_never_exceeds_the_eligible_amount(lines: list[tuple[str, str, int]], c: Coupon) -> None:
    verdict = check_coupon(c, priced(*lines), NOW)
    assert D("0") <= verdict.amount <= verdict.eligible_amount
    assert verdict.amount == verdict.amount.quantize(D("0.01"))
    assert verdict.applicable == (verdict.reasons == ())
