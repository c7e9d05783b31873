from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cart_svc.domain.currency import INR, ExchangeRate, convert_from_inr
from common.money import from_minor_units, round_half_up

PROPERTY = settings(max_examples=300, deadline=None, database=None)
D = Decimal


def test_inr_is_identity() -> None:
    assert ExchangeRate("INR", D("1")) == INR
    assert convert_from_inr(D("1499.00"), INR) == D("1499.00")


@pytest.mark.parametrize(
    ("amount", "rate", "expected"),
    [
        ("1499.00", "0.012", "17.99"),  # 17.988
        ("1234.50", "0.01", "12.35"),  # 12.345: half-up; banker's would give 12.34
        ("999.99", "0.0109", "10.90"),  # 10.899891
        ("0.00", "0.012", "0.00"),
        ("0.40", "0.012", "0.00"),  # 0.0048: a tiny price can round to nothing
    ],
)
def test_convert_rounds_half_up(amount: str, rate: str, expected: str) -> None:
    assert str(convert_from_inr(D(amount), ExchangeRate("USD", D(rate)))) == expected


def test_long_rates_are_multiplied_exactly() -> None:
    # Exact product 0.00499999…9 (32 digits) rounds to 0.00. A 28-digit context would first
    # round it half-even to 0.005000… and half-up would then give 0.01.
    rate = ExchangeRate("GBP", D("0.00499999999999999999999999999999"))
    assert convert_from_inr(D("1.00"), rate) == D("0.00")


@pytest.mark.parametrize(
    ("currency", "rate"),
    [
        ("JPY", "1"),
        ("usd", "0.012"),
        ("USD", "0"),
        ("USD", "-0.012"),
        ("USD", "NaN"),
        ("USD", "Infinity"),
        ("INR", "2"),
    ],
)
def test_exchange_rate_validation(currency: str, rate: str) -> None:
    with pytest.raises(ValueError):
        ExchangeRate(currency, D(rate))


def test_exchange_rate_must_be_decimal() -> None:
    with pytest.raises(ValueError):
        ExchangeRate("USD", 0.012)  # type: ignore[arg-type]


def test_negative_amounts_are_refused() -> None:
    with pytest.raises(ValueError):
        convert_from_inr(D("-1.00"), INR)


prices = st.integers(min_value=0, max_value=10**10).map(from_minor_units)
rates = st.builds(
    ExchangeRate,
    st.sampled_from(["USD", "EUR", "GBP"]),
    st.decimals(min_value=D("0.000001"), max_value=D("5"), places=8),
)


@PROPERTY
@given(prices, rates)
def test_conversion_is_rounded_close_and_stable(price: Decimal, rate: ExchangeRate) -> None:
    converted = convert_from_inr(price, rate)
    assert converted >= 0
    assert round_half_up(converted) == converted
    assert abs(converted - price * rate.rate) <= D("0.005")


@PROPERTY
@given(prices, prices, rates)
def test_conversion_keeps_order(a: Decimal, b: Decimal, rate: ExchangeRate) -> None:
    low, high = sorted((a, b))
    assert convert_from_inr(low, rate) <= convert_from_inr(high, rate)


@PROPERTY
@given(prices, st.integers(min_value=1, max_value=10), rates)
def test_per_unit_conversion_then_sum(price: Decimal, quantity: int, rate: ExchangeRate) -> None:
    # The contract converts each unit, then sums; the total can differ from converting the
    # INR total by at most half a minor unit per unit.
    line = convert_from_inr(price, rate) * quantity
    assert abs(line - price * quantity * rate.rate) <= D("0.005") * quantity
