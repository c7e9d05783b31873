"""GST tax documents: which series a document belongs to, its number, and the figures printed on
it. Plain values only; order_svc/invoice_pdf.py draws them and the repository numbers them.

- A financial year runs from 1 April to 31 March, in India's time (IST, UTC+05:30, no DST): an
  order paid at 23:00 UTC on 31 March is in the next year's series.
- Each kind of document has its own series per financial year, numbered 1, 2, 3… without gaps
  (the number is taken in the transaction that issues the document: a rollback takes it back).
- A document number is at most 16 characters (CGST Rules, rule 46(b)): `INV26-27/000042`,
  `CN26-27/000007`.
"""

from __future__ import annotations

import dataclasses
import datetime
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Final, Literal

Kind = Literal["invoice", "credit_note"]
PREFIXES: Final[Mapping[Kind, str]] = {"invoice": "INV", "credit_note": "CN"}
IST: Final = datetime.timezone(datetime.timedelta(hours=5, minutes=30), "IST")
MAX_NUMBER_LENGTH: Final = 16
SEQUENCE_DIGITS: Final = 6

ORDER_NUMBER_PREFIX: Final = "INT"

# 2 digits of state code, 10 of PAN, entity number, 'Z', a check character.
_GSTIN = re.compile(r"^[0-9]{2}[A-Z]{5}[0-9]{4}[A-Z][1-9A-Z]Z[0-9A-Z]$")
_GSTIN_ALPHABET: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


def financial_year(moment: datetime.datetime) -> str:
    """"2026-27" for any moment from 1 April 2026 00:00 IST to 31 March 2027 23:59:59 IST."""
    local = moment.astimezone(IST)
    start = local.year if local.month >= 4 else local.year - 1
    return f"{start}-{(start + 1) % 100:02d}"


def series(kind: Kind, year: str) -> str:
    """The series a document of `kind` issued in financial year `year` is numbered in: `INV26-27`."""
    start, end = year.split("-")
    return f"{PREFIXES[kind]}{start[2:]}-{end}"


def document_number(series_name: str, sequence: int) -> str:
    if sequence < 1:
        raise ValueError(f"a series starts at 1, not {sequence}")
    number = f"{series_name}/{sequence:0{SEQUENCE_DIGITS}d}"
    if len(number) > MAX_NUMBER_LENGTH:
        raise ValueError(f"{number!r} is longer than {MAX_NUMBER_LENGTH} characters")
    return number


def order_year(created_at: datetime.datetime) -> int:
    """The year an order was placed in, in India: its number is counted within that year."""
    return created_at.astimezone(IST).year


def order_number(sequence: int, created_at: datetime.datetime) -> str:
    """The order's short, human name: INT-<year placed, IST>-<number in that year, at least 6 digits>."""
    return f"{ORDER_NUMBER_PREFIX}-{order_year(created_at)}-{sequence:06d}"


def gstin_is_valid(gstin: str) -> bool:
    """The shape and the check character (the GSTN's mod-36 scheme over the first 14)."""
    if not _GSTIN.match(gstin):
        return False
    total = 0
    for position, char in enumerate(gstin[:14]):
        product = _GSTIN_ALPHABET.index(char) * (2 if position % 2 else 1)
        total += product // 36 + product % 36
    return gstin[14] == _GSTIN_ALPHABET[(36 - total % 36) % 36]


@dataclasses.dataclass(frozen=True)
class Party:
    name: str
    address: str = ""
    state: str = ""  # the GST state code, e.g. "KA"
    gstin: str = ""


@dataclasses.dataclass(frozen=True)
class Line:
    description: str
    sac: str
    amount: Decimal  # before discount and tax


@dataclasses.dataclass(frozen=True)
class TaxLine:
    name: str  # CGST, SGST, IGST
    rate: Decimal  # percent
    amount: Decimal


@dataclasses.dataclass(frozen=True)
class TaxDocument:
    """What a tax invoice or credit note says (a credit note: for the refunded part of `lines`)."""

    kind: Kind
    number: str
    issued_at: datetime.datetime
    order_number: str
    seller: Party
    buyer: Party
    place_of_supply: str
    currency: str
    lines: Sequence[Line]
    discount: Decimal
    taxable_value: Decimal
    taxes: Sequence[TaxLine]
    total: Decimal
    refers_to: str = ""  # a credit note: the invoice it corrects
    reason: str = ""


def taxable_value(subtotal: Decimal, discount: Decimal) -> Decimal:
    return subtotal - discount


def credit_note_figures(refund: Decimal, total: Decimal, taxable: Decimal,
                        taxes: Sequence[TaxLine]) -> tuple[Decimal, list[TaxLine]]:
    """The taxable value and tax lines of a refund of `refund` out of an invoice of `total`: the
    invoice's tax lines scaled by refund/total, each rounded half-up to the paisa (ROUND_TAX_SHARE),
    and the taxable value as the rest, so that value + taxes = refund exactly."""
    if total <= 0 or not 0 < refund <= total:
        raise ValueError(f"a refund of {refund} out of {total}")
    if refund == total:
        return taxable, list(taxes)
    share = refund / total
    scaled = [TaxLine(tax.name, tax.rate, round_tax_share(tax.amount * share)) for tax in taxes]
    return refund - sum((tax.amount for tax in scaled), Decimal("0")), scaled


def round_tax_share(amount: Decimal) -> Decimal:
    """ROUND_TAX_SHARE: a tax line's share of a partial refund, half-up to 0.01."""
    return amount.quantize(Decimal("0.01"), rounding="ROUND_HALF_UP")


_MINOR_NAMES: Final[Mapping[str, tuple[str, str]]] = {"INR": ("Indian Rupees", "Paise"), "USD": ("US Dollars", "Cents"),
                                                      "EUR": ("Euros", "Cents"), "GBP": ("Pounds Sterling", "Pence")}


def amount_in_words(amount: Decimal, currency: str) -> str:
    """"Indian Rupees One Thousand One Hundred Eighty And Paise Fifty Only": the Indian numbering
    (lakh, crore) for every currency, as Indian invoices write it."""
    from num2words import num2words  # the Indian system (lakh, crore) is its `en_IN`

    if amount < 0:
        raise ValueError(f"a negative amount: {amount}")
    major, minor_name = _MINOR_NAMES.get(currency, (currency, "Hundredths"))
    whole = int(amount)
    fraction = int((amount - whole) * 100)
    words = f"{major} {_title(num2words(whole, lang='en_IN'))}"
    if fraction:
        words += f" And {minor_name} {_title(num2words(fraction, lang='en_IN'))}"
    return f"{words} Only"


def _title(words: str) -> str:
    return " ".join(part.capitalize() for part in words.replace(",", "").replace("-", " ").split() if part != "and")
