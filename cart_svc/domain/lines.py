"""Cart lines as pricing sees them: the input (INR list price) and the priced result."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from common.money import CENT, ZERO


@dataclass(frozen=True)
class LineToPrice:
    """One item of a cart: a plan of an internship, at its INR list price (tax-exclusive)."""

    internship_id: str
    plan_id: str
    unit_price_inr: Decimal
    quantity: int

    def __post_init__(self) -> None:
        price = self.unit_price_inr
        if not isinstance(price, Decimal) or not price.is_finite() or price < ZERO or price != price.quantize(CENT):
            raise ValueError(f"unit price must be a non-negative Decimal with 2 places, got {price!r}")
        if not isinstance(self.quantity, int) or isinstance(self.quantity, bool) or self.quantity < 1:
            raise ValueError(f"quantity must be a positive integer, got {self.quantity!r}")


@dataclass(frozen=True)
class PricedLine:
    """A line after the sale and conversion. All prices except `unit_price_inr` are in the cart's currency."""

    internship_id: str
    plan_id: str
    quantity: int
    list_unit_price: Decimal  # converted list price, before the sale
    unit_price: Decimal  # converted price after the sale: what the customer pays per unit
    unit_price_inr: Decimal  # price after the sale, before conversion

    @property
    def line_total(self) -> Decimal:
        # Exact: a 2-place price times an integer needs no rounding.
        return self.unit_price * self.quantity

    @property
    def line_total_inr(self) -> Decimal:
        return self.unit_price_inr * self.quantity
