from decimal import ROUND_HALF_EVEN, Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.money import (
    MAX_AMOUNT,
    SUPPORTED_CURRENCIES,
    format_amount,
    from_minor_units,
    parse_amount,
    round_half_up,
    to_minor_units,
)

PROPERTY = settings(max_examples=300, deadline=None, database=None)
MAX_MINOR = to_minor_units(MAX_AMOUNT)
D = Decimal


def test_supported_currencies() -> None:
    assert SUPPORTED_CURRENCIES == ("INR", "USD", "EUR", "GBP")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", "0.00"),
        ("1499", "1499.00"),
        ("1499.5", "1499.50"),
        ("1499.00", "1499.00"),
        ("0.01", "0.01"),
        ("007.10", "7.10"),
        ("99999999.99", "99999999.99"),
    ],
)
def test_parse_amount_accepts_plain_decimals(text: str, expected: str) -> None:
    value = parse_amount(text)
    assert value == D(expected)
    assert str(value) == expected  # always carries exactly two places


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        " 1",
        "1 ",
        "-1",
        "+1",
        "-0.00",
        "1.001",
        "1.",
        ".5",
        "1e3",
        "1E3",
        "1E-2",
        "NaN",
        "nan",
        "sNaN",
        "Infinity",
        "-Infinity",
        "inf",
        "1,000",
        "1_000",
        "0x10",
        "\u0661\u0662",  # Arabic-Indic digits
        "\uff11\uff12",  # fullwidth digits
        "1/2",
        "100000000.00",
    ],
)
def test_parse_amount_rejects_anything_else(text: str) -> None:
    with pytest.raises(ValueError, match="amount"):
        parse_amount(text)


@pytest.mark.parametrize("value", [1.5, 15, None, D("1.50")])
def test_parse_amount_rejects_non_strings(value: object) -> None:
    with pytest.raises(ValueError, match="must be a string"):
        parse_amount(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "half_up", "bankers"),
    [
        ("0.125", "0.13", "0.12"),
        ("2.675", "2.68", "2.68"),
        ("1000.045", "1000.05", "1000.04"),
        ("89.9991", "90.00", "90.00"),
        ("179.9982", "180.00", "180.00"),
        ("0.005", "0.01", "0.00"),
        ("-0.125", "-0.13", "-0.12"),
        ("7", "7.00", "7.00"),
    ],
)
def test_round_half_up_differs_from_bankers_rounding(value: str, half_up: str, bankers: str) -> None:
    assert str(round_half_up(D(value))) == half_up
    assert str(D(value).quantize(D("0.01"), rounding=ROUND_HALF_EVEN)) == bankers


@pytest.mark.parametrize("value", [D("NaN"), D("Infinity"), D("-Infinity"), 1.005, D("1E+40")])
def test_round_half_up_rejects_non_finite_and_non_decimal(value: object) -> None:
    with pytest.raises(ValueError):
        round_half_up(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (D("1499"), "1499.00"),
        (D("1499.5"), "1499.50"),
        (D("1.500"), "1.50"),
        (D("-0.00"), "0.00"),
        (D("0"), "0.00"),
        (D("1E+3"), "1000.00"),
        (D("-5.10"), "-5.10"),
    ],
)
def test_format_amount_prints_exactly_two_places(value: Decimal, text: str) -> None:
    assert format_amount(value) == text


@pytest.mark.parametrize("value", [D("1.005"), D("NaN"), D("Infinity"), 1.5])
def test_format_amount_refuses_to_round_silently(value: object) -> None:
    with pytest.raises(ValueError):
        format_amount(value)  # type: ignore[arg-type]


def test_minor_units() -> None:
    assert to_minor_units(D("14.99")) == 1499
    assert to_minor_units(D("0")) == 0
    assert to_minor_units(D("1.5")) == 150
    assert from_minor_units(1499) == D("14.99")
    assert str(from_minor_units(0)) == "0.00"
    with pytest.raises(ValueError):
        to_minor_units(D("0.001"))
    with pytest.raises(ValueError):
        from_minor_units(True)


@PROPERTY
@given(st.integers(min_value=0, max_value=MAX_MINOR))
def test_format_parse_round_trip(minor: int) -> None:
    value = from_minor_units(minor)
    text = format_amount(value)
    assert parse_amount(text) == value
    assert format_amount(parse_amount(text)) == text
    assert to_minor_units(parse_amount(text)) == minor


@PROPERTY
@given(st.decimals(allow_nan=False, allow_infinity=False, min_value=-(10**9), max_value=10**9, places=6))
def test_rounding_is_stable_and_close(value: Decimal) -> None:
    once = round_half_up(value)
    assert round_half_up(once) == once
    assert abs(once - value) <= D("0.005")
    assert format_amount(once) == format_amount(round_half_up(once))
