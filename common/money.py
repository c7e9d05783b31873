"""Money: `Decimal` amounts with two places, never float.

Rounding rule (the one the contract documents): half-up to 2 places, i.e. a third
decimal of 5 rounds away from zero (0.125 -> 0.13, 0.135 -> 0.14). Python's default
for Decimal is banker's rounding (half-even), which would turn 0.125 into 0.12, so
every rounding in pricing goes through `round_half_up` and nothing else.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Final

SUPPORTED_CURRENCIES: Final = ("INR", "USD", "EUR", "GBP")

CENT: Final = Decimal("0.01")
ZERO: Final = Decimal("0.00")
# Fits a DECIMAL(10,2) column; also keeps absurdly long strings out of arithmetic.
MAX_AMOUNT: Final = Decimal("99999999.99")

# ASCII digits only: `\d` would also accept other scripts' digits.
_AMOUNT_RE: Final = re.compile(r"[0-9]+(?:\.[0-9]{1,2})?", re.ASCII)


def parse_amount(text: str) -> Decimal:
    """Parse a non-negative decimal string with at most 2 places ("1499", "1499.5", "1499.00").

    Rejects signs, exponents, NaN/Infinity, blanks, separators and over-long values.
    The result always carries exactly two places.
    """
    if not isinstance(text, str):
        raise ValueError(f"amount must be a string, got {type(text).__name__}")
    if not _AMOUNT_RE.fullmatch(text):
        raise ValueError(
            f"invalid amount {text[:40]!r}: expected a non-negative decimal with at most 2 places, e.g. '1499.00'"
        )
    value = Decimal(text)
    if value > MAX_AMOUNT:
        raise ValueError(f"invalid amount {text[:40]!r}: larger than {MAX_AMOUNT}")
    return value.quantize(CENT)


def round_half_up(value: Decimal) -> Decimal:
    """Round to 2 places, half away from zero (ROUND_HALF_UP). The only rounding we use."""
    _require_finite(value)
    return _quantize(value)


def format_amount(value: Decimal) -> str:
    """Render with exactly two places ("1499.00").

    Refuses values with more than two places: rounding must be an explicit,
    visible step (`round_half_up`), never a side effect of printing.
    """
    _require_cents(value)
    # `+ ZERO` turns a negative zero into "0.00".
    return f"{_quantize(value) + ZERO:f}"


def to_minor_units(value: Decimal) -> int:
    """Decimal major units -> integer minor units (paise, cents): 14.99 -> 1499."""
    _require_cents(value)
    return int(value.scaleb(2))


def from_minor_units(units: int) -> Decimal:
    """Integer minor units -> Decimal with two places: 1499 -> 14.99."""
    if not isinstance(units, int) or isinstance(units, bool):
        raise ValueError(f"minor units must be an int, got {type(units).__name__}")
    return _quantize(Decimal(units).scaleb(-2))


def _require_finite(value: Decimal) -> None:
    if not isinstance(value, Decimal):
        raise ValueError(f"amount must be a Decimal, got {type(value).__name__}")
    if not value.is_finite():
        raise ValueError(f"amount must be finite, got {value}")


def _require_cents(value: Decimal) -> None:
    _require_finite(value)
    if value != _quantize(value):
        raise ValueError(f"amount {value} has more than 2 decimal places; round it first")


def _quantize(value: Decimal) -> Decimal:
    try:
        return value.quantize(CENT, rounding=ROUND_HALF_UP)
    except InvalidOperation:
        raise ValueError(f"amount {value} is too large") from None
