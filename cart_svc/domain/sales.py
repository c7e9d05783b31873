"""Sales: automatic reductions of INR list prices, per unit, inside a time window.

A sale is applied to each unit's INR list price before currency conversion, so the
converted price is what the customer sees per unit. A fixed sale value is in INR.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from cart_svc.domain.reductions import ReductionKind, amount_off, describe, frozen_ids, require_reduction
from cart_svc.domain.validity import is_open, require_window


@dataclass(frozen=True)
class Sale:
    slug: str
    kind: ReductionKind
    value: Decimal  # percent, or INR off each unit
    internship_ids: frozenset[str] = field(default_factory=frozenset)  # empty = every internship
    starts_at: datetime | None = None
    ends_at: datetime | None = None

    def __post_init__(self) -> None:
        if not self.slug:
            raise ValueError("sale slug must not be empty")
        require_reduction(self.kind, self.value)
        require_window(self.starts_at, self.ends_at)
        object.__setattr__(self, "internship_ids", frozen_ids(self.internship_ids))

    def is_active(self, now: datetime) -> bool:
        return is_open(self.starts_at, self.ends_at, now)

    def covers(self, internship_id: str) -> bool:
        return not self.internship_ids or internship_id in self.internship_ids

    @property
    def description(self) -> str:
        return describe(self.kind, self.value, "INR")


def sale_unit_price(sale: Sale | None, internship_id: str, unit_price_inr: Decimal, now: datetime) -> Decimal:
    """The INR unit price after `sale`, or the list price when it is absent, closed or not covering."""
    if sale is None or not sale.is_active(now) or not sale.covers(internship_id):
        return unit_price_inr
    return unit_price_inr - amount_off(unit_price_inr, sale.kind, sale.value)
