"""The two shapes of a price reduction, shared by coupons and sales: percent off or a fixed amount off."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Final, Literal, TypeGuard

from common.money import CENT, ZERO, round_half_up

ReductionKind = Literal["percent", "fixed"]
REDUCTION_KINDS: Final = ("percent", "fixed")
_HUNDRED: Final = Decimal("100")


def is_reduction_kind(kind: str) -> TypeGuard[ReductionKind]:
    return kind in REDUCTION_KINDS


def require_reduction(kind: str, value: Decimal) -> None:
    """Percent: 0 < value <= 100. Fixed: a positive amount with at most 2 places."""
    if not is_reduction_kind(kind):
        raise ValueError(f"kind must be 'percent' or 'fixed', got {kind[:20]!r}")
    if not isinstance(value, Decimal) or not value.is_finite() or value <= ZERO:
        raise ValueError(f"{kind} value must be a positive Decimal, got {value!r}")
    if kind == "percent" and value > _HUNDRED:
        raise ValueError(f"percent value must be at most 100, got {value}")
    if kind == "fixed" and value != value.quantize(CENT):
        raise ValueError(f"fixed value must have at most 2 decimal places, got {value}")


def amount_off(base: Decimal, kind: ReductionKind, value: Decimal) -> Decimal:
    """How much comes off `base`: never more than `base` itself, so nothing goes negative.

    `value` for a fixed reduction must already be in `base`'s currency.
    """
    if kind == "percent":
        # base has 2 places and value <= 100, so rounding half-up cannot exceed base.
        return round_half_up(base * value / _HUNDRED)
    return min(value, base)


def describe(kind: ReductionKind, value: Decimal, currency: str) -> str:
    """Human wording for a discount line: "10% off", "500.00 INR off"."""
    if kind == "percent":
        return f"{value.normalize():f}% off"
    return f"{value.quantize(CENT):f} {currency} off"


def frozen_ids(ids: Iterable[str]) -> frozenset[str]:
    """The internships a reduction is limited to (empty = all), as an immutable set."""
    # A bare string is iterable too and would become a set of its characters.
    if isinstance(ids, str):
        raise ValueError("internship_ids must be a collection of ids, not a single string")
    return frozenset(ids)
