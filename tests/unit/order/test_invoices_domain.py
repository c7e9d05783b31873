"""The rules of GST tax documents (order_svc/domain/invoices.py), without a database."""

from __future__ import annotations

import datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from order_svc.domain.invoices import (
    MAX_NUMBER_LENGTH,
    TaxLine,
    amount_in_words,
    credit_note_figures,
    document_number,
    financial_year,
    gstin_is_valid,
    order_number,
    round_tax_share,
    series,
)

UTC = datetime.UTC


@pytest.mark.parametrize(("moment", "year"), [
    (datetime.datetime(2026, 4, 1, 0, 0, tzinfo=UTC), "2026-27"),
    (datetime.datetime(2026, 3, 31, 18, 29, 59, tzinfo=UTC), "2025-26"),  # 23:59:59 IST on 31 March
    (datetime.datetime(2026, 3, 31, 18, 30, tzinfo=UTC), "2026-27"),  # 00:00 IST on 1 April
    (datetime.datetime(2027, 1, 15, tzinfo=UTC), "2026-27"),
    (datetime.datetime(2099, 12, 31, tzinfo=UTC), "2099-00"),
])
def test_the_financial_year_runs_april_to_march_in_india(moment: datetime.datetime, year: str) -> None:
    assert financial_year(moment) == year


def test_series_and_numbers_fit_the_sixteen_characters_the_rules_allow() -> None:
    assert series("invoice", "2026-27") == "INV26-27"
    assert series("credit_note", "2026-27") == "CN26-27"
    assert document_number("INV26-27", 42) == "INV26-27/000042"
    assert len(document_number("INV26-27", 9_999_999)) == MAX_NUMBER_LENGTH
    with pytest.raises(ValueError):
        document_number("INV26-27", 10_000_000)
    with pytest.raises(ValueError):
        document_number("INV26-27", 0)


def test_order_numbers_are_short_and_carry_the_year_placed_in_india() -> None:
    assert order_number(123, datetime.datetime(2026, 12, 31, 19, 0, tzinfo=UTC)) == "INT-2027-000123"
    assert order_number(1_234_567, datetime.datetime(2026, 5, 1, tzinfo=UTC)) == "INT-2026-1234567"


@pytest.mark.parametrize("gstin", ["27AAPFU0939F1ZV", "29AAGCR4375J1ZU"])
def test_real_gstins_are_valid(gstin: str) -> None:
    assert gstin_is_valid(gstin)


@pytest.mark.parametrize("gstin", ["27AAPFU0939F1ZW", "27aapfu0939f1zv", "27AAPFU0939F1Z", "X7AAPFU0939F1ZV",
                                   "27AAPFU0939F1YV", "", "27AAPFU0939F1ZV "])
def test_malformed_gstins_and_wrong_check_characters_are_refused(gstin: str) -> None:
    assert not gstin_is_valid(gstin)


@given(st.sampled_from("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
def test_any_other_check_character_is_refused(check: str) -> None:
    assert gstin_is_valid("29AAGCR4375J1Z" + check) == (check == "U")


@pytest.mark.parametrize(("amount", "words"), [
    ("0.00", "Indian Rupees Zero Only"),
    ("1.01", "Indian Rupees One And Paise One Only"),
    ("4718.82", "Indian Rupees Four Thousand Seven Hundred Eighteen And Paise Eighty Two Only"),
    ("1234567.00", "Indian Rupees Twelve Lakh Thirty Four Thousand Five Hundred Sixty Seven Only"),
    ("120000000.50", "Indian Rupees Twelve Crore And Paise Fifty Only"),
])
def test_amounts_in_words_use_the_indian_numbering(amount: str, words: str) -> None:
    assert amount_in_words(Decimal(amount), "INR") == words


def test_other_currencies_name_their_own_units() -> None:
    assert amount_in_words(Decimal("56.10"), "USD") == "US Dollars Fifty Six And Cents Ten Only"


def test_a_full_refund_credits_the_invoice_as_it_was() -> None:
    taxes = [TaxLine("CGST", Decimal("9"), Decimal("90.00")), TaxLine("SGST", Decimal("9"), Decimal("90.00"))]
    assert credit_note_figures(Decimal("1180.00"), Decimal("1180.00"), Decimal("1000.00"), taxes) == \
        (Decimal("1000.00"), taxes)


def test_round_tax_share_is_half_up_to_the_paisa() -> None:
    assert round_tax_share(Decimal("0.005")) == Decimal("0.01")
    assert round_tax_share(Decimal("0.0049")) == Decimal("0.00")


cents = st.integers(min_value=1, max_value=10**9).map(lambda n: Decimal(n) / 100)


@given(total=cents, share=st.fractions(min_value=0, max_value=1, max_denominator=10**4),
       intra=st.booleans())
def test_a_credit_note_adds_up_to_the_refund_to_the_paisa(total: Decimal, share: object, intra: bool) -> None:
    """Taxable value + tax lines = the refund, whatever the share; no tax line exceeds the invoice's."""
    taxable = (total / Decimal("1.18")).quantize(Decimal("0.01"))
    tax = total - taxable
    taxes = ([TaxLine("CGST", Decimal("9"), (tax / 2).quantize(Decimal("0.01"))),
              TaxLine("SGST", Decimal("9"), tax - (tax / 2).quantize(Decimal("0.01")))] if intra
             else [TaxLine("IGST", Decimal("18"), tax)])
    refund = max(Decimal("0.01"), (total * Decimal(share.numerator) / Decimal(share.denominator))  # type: ignore[attr-defined]
                 .quantize(Decimal("0.01")))
    value, lines = credit_note_figures(refund, total, taxable, taxes)
    assert value + sum(line.amount for line in lines) == refund
    assert all(0 <= line.amount <= original.amount for line, original in zip(lines, taxes, strict=True))
    assert all(line.amount == line.amount.quantize(Decimal("0.01")) for line in lines)


@pytest.mark.parametrize(("refund", "total"), [("0.00", "10.00"), ("10.01", "10.00"), ("1.00", "0.00")])
def test_a_credit_note_is_for_part_or_all_of_a_paid_invoice_only(refund: str, total: str) -> None:
    with pytest.raises(ValueError):
        credit_note_figures(Decimal(refund), Decimal(total), Decimal(total), [])
