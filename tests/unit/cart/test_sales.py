from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cart_svc.domain.sales import Sale, sale_unit_price
from common.money import from_minor_units

PROPERTY = settings(max_examples=300, deadline=None, database=None)
D = Decimal
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def sale(**overrides: Any) -> Sale:
    fields: dict[str, Any] = {"slug": "diwali", "kind": "percent", "value": D("15")} | overrides
    return Sale(**fields)


@pytest.mark.parametrize(
    ("price", "kind", "value", "expected"),
    [
        ("999.99", "percent", "15", "849.99"),  # 149.9985 off -> 150.00
        ("1000.10", "percent", "5", "950.09"),  # 50.005 off -> 50.01 (half-up; banker's 50.00)
        ("1499.00", "percent", "100", "0.00"),
        ("1499.00", "fixed", "500.00", "999.00"),
        ("300.00", "fixed", "500.00", "0.00"),  # never below zero
    ],
)
def test_sale_price(price: str, kind: str, value: str, expected: str) -> None:
    assert sale_unit_price(sale(kind=kind, value=D(value)), "any", D(price), NOW) == D(expected)


@pytest.mark.parametrize(
    ("window", "active"),
    [
        ({}, True),
        ({"starts_at": NOW}, True),
        ({"starts_at": NOW + HOUR}, False),
        ({"ends_at": NOW + HOUR}, True),
        ({"ends_at": NOW}, False),  # ends_at is exclusive
        ({"starts_at": NOW - 2 * HOUR, "ends_at": NOW - HOUR}, False),
    ],
)
def test_sale_window(window: dict[str, datetime], active: bool) -> None:
    s = sale(**window)
    assert s.is_active(NOW) is active
    assert sale_unit_price(s, "any", D("100.00"), NOW) == (D("85.00") if active else D("100.00"))


def test_sale_covers_only_its_internships() -> None:
    s = sale(internship_ids=frozenset({"data"}))
    assert sale_unit_price(s, "data", D("100.00"), NOW) == D("85.00")
    assert sale_unit_price(s, "web", D("100.00"), NOW) == D("100.00")
    assert sale_unit_price(None, "data", D("100.00"), NOW) == D("100.00")


def test_windows_need_aware_datetimes() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        sale(ends_at=datetime(2026, 12, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        sale().is_active(datetime(2026, 12, 1))


@pytest.mark.parametrize(
    "overrides",
    [
        {"slug": ""},
        {"kind": "bogo"},
        {"value": D("0")},
        {"value": D("101")},
        {"kind": "fixed", "value": D("0.001")},
        {"starts_at": NOW, "ends_at": NOW - HOUR},
        {"internship_ids": "data"},
    ],
)
def test_invalid_sales_are_refused(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        sale(**overrides)


def test_description() -> None:
    assert sale().description == "15% off"
    assert sale(kind="fixed", value=D("250")).description == "250.00 INR off"


@PROPERTY
@given(
    st.integers(0, 10**9).map(from_minor_units),
    st.one_of(
        st.builds(sale, kind=st.just("percent"), value=st.decimals(D("0.01"), D("100"), places=2)),
        st.builds(sale, kind=st.just("fixed"), value=st.integers(1, 10**9).map(from_minor_units)),
    ),
)
def test_sale_price_stays_between_zero_and_list(price: Decimal, s: Sale) -> None:
    reduced = sale_unit_price(s, "any", price, NOW)
    assert D("0") <= reduced <= price
    assert reduced == reduced.quantize(D("0.01"))
