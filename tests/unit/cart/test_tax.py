from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cart_svc.domain.tax import (
    INDIAN_STATE_CODES,
    ISO_COUNTRY_CODES,
    Billing,
    TaxLine,
    compute_taxes,
    effective_tax_rate,
    is_country_code,
    is_indian_state_code,
)
from common.money import from_minor_units

PROPERTY = settings(max_examples=400, deadline=None, database=None)
D = Decimal


def lines(*triples: tuple[str, str, str]) -> tuple[TaxLine, ...]:
    return tuple(TaxLine(name, D(rate), D(amount)) for name, rate, amount in triples)


# The CONTRACT table, with a taxable amount whose tax lines need rounding.
@pytest.mark.parametrize(
    ("billing", "expected"),
    [
        (Billing("IN", "KA"), lines(("CGST", "9", "90.00"), ("SGST", "9", "90.00"))),  # 89.9991 each
        (Billing("IN", "MH"), lines(("IGST", "18", "180.00"))),  # 179.9982
        (None, lines(("IGST", "18", "180.00"))),
        (Billing("IN"), lines(("IGST", "18", "180.00"))),  # no state: cannot be shown intra-state
        (Billing("US", "CA"), ()),  # export of services
        (Billing("GB"), ()),
    ],
)
def test_contract_tax_table(billing: Billing | None, expected: tuple[TaxLine, ...]) -> None:
    assert compute_taxes(D("999.99"), billing) == expected


@pytest.mark.parametrize(
    ("taxable", "billing", "amounts"),
    [
        # 9% of 1000.50 = 90.045: half-up 90.05 (banker's would give 90.04); IGST 180.09 exact.
        ("1000.50", Billing("IN", "KA"), ["90.05", "90.05"]),
        ("1000.50", None, ["180.09"]),
        # 18% of 1000.25 = 180.045: half-up 180.05 (banker's 180.04); CGST 90.0225 -> 90.02.
        ("1000.25", None, ["180.05"]),
        ("1000.25", Billing("IN", "KA"), ["90.02", "90.02"]),
        ("0.50", Billing("IN", "KA"), ["0.05", "0.05"]),  # 0.045 each
        ("0.00", Billing("IN", "KA"), ["0.00", "0.00"]),
    ],
)
def test_each_tax_line_rounds_half_up(taxable: str, billing: Billing | None, amounts: list[str]) -> None:
    assert [str(t.amount) for t in compute_taxes(D(taxable), billing)] == amounts


def test_seller_state_is_a_parameter() -> None:
    assert [t.name for t in compute_taxes(D("100.00"), Billing("IN", "MH"), seller_state="MH")] == ["CGST", "SGST"]
    assert [t.name for t in compute_taxes(D("100.00"), Billing("IN", "KA"), seller_state="MH")] == ["IGST"]


@pytest.mark.parametrize(
    ("seller", "buyer"), [("KA", "ka"), ("CT", "CG"), ("OR", "OD"), ("TS", "TG"), ("UT", "UK"), ("DN", "DD")]
)
def test_alternate_state_codes_are_the_same_state(seller: str, buyer: str) -> None:
    assert effective_tax_rate(Billing("in", buyer), seller) == D("18")
    assert [t.name for t in compute_taxes(D("1.00"), Billing("in", buyer), seller)] == ["CGST", "SGST"]


def test_effective_rate() -> None:
    assert effective_tax_rate(Billing("IN", "KA")) == D("18")
    assert effective_tax_rate(None) == D("18")
    assert effective_tax_rate(Billing("FR")) == D("0")


@pytest.mark.parametrize(
    ("country", "state"),
    [("XX", None), ("UK", None), ("IND", None), ("", None), ("\u0131n", None), ("IN", "ZZ"), ("IN", "Karnataka")],
)
def test_billing_rejects_unknown_codes(country: str, state: str | None) -> None:
    with pytest.raises(ValueError):
        Billing(country, state)


def test_billing_normalises_codes() -> None:
    assert Billing("in", "cg") == Billing("IN", "CT")
    assert Billing("IN", "") == Billing("IN", None)
    assert Billing("us", "California").state == "California"  # foreign states are not validated


def test_code_sets() -> None:
    assert len(ISO_COUNTRY_CODES) == 249
    assert all(is_country_code(c) for c in ("IN", "in", "US", "GB", "DE", "SS", "AX"))
    assert not any(is_country_code(c) for c in ("UK", "EU", "XK", "XX", "ZZ", "ß", "\u0131n", ""))
    official = (
        "AN AP AR AS BR CH CT CG DN DD DL GA GJ HR HP JK JH KA KL LA LD MP MH MN ML MZ NL OR OD PY PB RJ SK TN TS TG"
        " TR UP UT UK WB"
    )
    assert set(official.split()) <= INDIAN_STATE_CODES
    assert is_indian_state_code("ka") and not is_indian_state_code("XX")


def test_negative_taxable_is_refused() -> None:
    with pytest.raises(ValueError):
        compute_taxes(D("-0.01"), None)
    with pytest.raises(ValueError):
        compute_taxes(D("1.00"), None, seller_state="ZZ")


amounts = st.integers(min_value=0, max_value=10**10).map(from_minor_units)


@PROPERTY
@given(amounts)
def test_split_gst_matches_igst_within_one_paisa(taxable: Decimal) -> None:
    # CGST and SGST are each round(9% x), IGST is round(18% x). Each rounding is off by at
    # most 0.005, so |CGST + SGST - IGST| <= 0.015, and being in whole paise, <= 0.01.
    cgst, sgst = compute_taxes(taxable, Billing("IN", "KA"))
    (igst,) = compute_taxes(taxable, Billing("IN", "MH"))
    assert cgst.amount == sgst.amount
    assert abs(cgst.amount + sgst.amount - igst.amount) <= D("0.01")


@PROPERTY
@given(amounts, st.sampled_from([Billing("IN", "KA"), Billing("IN", "TN"), None, Billing("JP")]))
def test_tax_lines_are_rounded_non_negative_and_close(taxable: Decimal, billing: Billing | None) -> None:
    for line in compute_taxes(taxable, billing):
        exact = taxable * line.rate / 100
        assert line.amount >= 0
        assert line.amount == line.amount.quantize(D("0.01"))
        assert abs(line.amount - exact) <= D("0.005")
