"""Conversion from INR list prices into the cart's currency (CONTRACT "Currency").

Each unit price is converted and rounded half-up to 2 places on its own; the caller
multiplies by quantity and sums. Converting the sum instead would give a total that
does not equal the sum of the lines the customer sees.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, localcontext
from typing import Final

from common.money import SUPPORTED_CURRENCIES, ZERO, round_half_up

BASE_CURRENCY: Final = "INR"


@dataclass(frozen=True)
class ExchangeRate:
    """`rate` = units of `currency` per 1 INR (USD ~ 0.012). INR's own rate is exactly 1."""

    currency: str
    rate: Decimal

    def __post_init__(self) -> None:
        if self.currency not in SUPPORTED_CURRENCIES:
            raise ValueError(
                f"unsupported currency {self.currency[:10]!r}; expected one of {', '.join(SUPPORTED_CURRENCIES)}"
            )
        if not isinstance(self.rate, Decimal) or not self.rate.is_finite() or self.rate <= 0:
            raise ValueError(f"exchange rate for {self.currency} must be a positive Decimal, got {self.rate!r}")
        if self.currency == BASE_CURRENCY and self.rate != 1:
            raise ValueError(f"the INR rate is always 1, got {self.rate}")


INR: Final = ExchangeRate(BASE_CURRENCY, Decimal("1"))


def convert_from_inr(amount_inr: Decimal, rate: ExchangeRate) -> Decimal:
    """An INR amount (one unit price, or a fixed coupon value) in `rate.currency`, rounded half-up."""
    if amount_inr < ZERO:
        raise ValueError(f"amount to convert must not be negative, got {amount_inr}")
    # A rate may carry many digits; the default 28-digit context would round the product
    # half-even before our half-up rounding. Give it enough precision to be exact.
    with localcontext() as ctx:
        ctx.prec = len(amount_inr.as_tuple().digits) + len(rate.rate.as_tuple().digits) + 1
        product = amount_inr * rate.rate
    return round_half_up(product)
