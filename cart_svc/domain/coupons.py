"""Coupons: one per cart, checked against the priced cart, every failing reason reported.

Decisions:
- `min_subtotal` is in INR and compared with the cart's subtotal in INR after the sale
  (before conversion), so whether a coupon applies never depends on the exchange rate.
- A fixed coupon's `currency` defaults to INR; it is converted to the cart's currency at
  the cart's rate. A fixed coupon in another currency applies only to carts in that
  currency (no cross rates here).
- The discount is taken from eligible lines only and never exceeds their total.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from cart_svc.domain.currency import BASE_CURRENCY, INR, ExchangeRate, convert_from_inr
from cart_svc.domain.lines import PricedLine
from cart_svc.domain.reductions import ReductionKind, amount_off, describe, frozen_ids, require_reduction
from cart_svc.domain.validity import has_ended, has_started, require_window
from common.money import CENT, SUPPORTED_CURRENCIES, ZERO

# An unknown code and an unlisted coupon that does not apply are refused alike, so that trying codes
# tells nothing about which private ones exist (cart_svc/domain/coupon_attempts.py limits the tries).
UNUSABLE_CODE = "no coupon with this code can be used on this cart"


class CouponReason(StrEnum):
    NOT_STARTED = "coupon is not valid yet"
    EXPIRED = "coupon has expired"
    LIMIT_REACHED = "coupon redemption limit reached"
    USER_LIMIT_REACHED = "coupon already used the maximum number of times by this user"
    BELOW_MINIMUM = "cart subtotal is below the coupon's minimum"
    NO_ELIGIBLE_ITEMS = "coupon does not apply to any internship in the cart"
    CURRENCY_MISMATCH = "coupon amount is in a different currency from the cart"


@dataclass(frozen=True)
class Coupon:
    code: str
    kind: ReductionKind
    value: Decimal  # percent, or an amount in `currency`
    currency: str = BASE_CURRENCY  # fixed coupons only
    min_subtotal: Decimal = ZERO  # INR
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    max_redemptions: int = 0  # 0 = unlimited
    max_redemptions_per_user: int = 0  # 0 = unlimited
    redeemed_count: int = 0
    internship_ids: frozenset[str] = field(default_factory=frozenset)  # empty = every internship
    listed: bool = False  # offered to every cart in the discounts listing; unlisted codes are never disclosed

    def __post_init__(self) -> None:
        if not self.code:
            raise ValueError("coupon code must not be empty")
        require_reduction(self.kind, self.value)
        if self.currency not in SUPPORTED_CURRENCIES:
            raise ValueError(f"unsupported coupon currency {self.currency[:10]!r}")
        if self.min_subtotal < ZERO or self.min_subtotal != self.min_subtotal.quantize(CENT):
            raise ValueError(f"min_subtotal must be a non-negative amount with 2 places, got {self.min_subtotal}")
        for name in ("max_redemptions", "max_redemptions_per_user", "redeemed_count"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        require_window(self.starts_at, self.ends_at)
        object.__setattr__(self, "internship_ids", frozen_ids(self.internship_ids))

    def covers(self, internship_id: str) -> bool:
        return not self.internship_ids or internship_id in self.internship_ids

    @property
    def description(self) -> str:
        return describe(self.kind, self.value, self.currency)


@dataclass(frozen=True)
class CouponVerdict:
    applicable: bool
    reasons: tuple[str, ...]  # every reason it does not apply; empty when it does
    amount: Decimal  # discount in the cart's currency; 0.00 when not applicable
    eligible_amount: Decimal  # total of the lines the coupon covers, in the cart's currency


def usage_reasons(coupon: Coupon, now: datetime, user_redemptions: int) -> list[str]:
    """Why the coupon may not be used now by this user, whatever the cart: window and limits.
    Redemption re-checks these under the coupon's row lock (cart_svc/redemptions.py)."""
    reasons: list[str] = []
    if not has_started(coupon.starts_at, now):
        reasons.append(CouponReason.NOT_STARTED)
    if has_ended(coupon.ends_at, now):
        reasons.append(CouponReason.EXPIRED)
    if coupon.max_redemptions and coupon.redeemed_count >= coupon.max_redemptions:
        reasons.append(CouponReason.LIMIT_REACHED)
    if coupon.max_redemptions_per_user and user_redemptions >= coupon.max_redemptions_per_user:
        reasons.append(CouponReason.USER_LIMIT_REACHED)
    return reasons


def check_coupon(
    coupon: Coupon,
    lines: Sequence[PricedLine],
    now: datetime,
    user_redemptions: int = 0,
    rate: ExchangeRate = INR,
) -> CouponVerdict:
    """Judge `coupon` against priced `lines` (after sale and conversion to `rate.currency`)."""
    eligible = [line for line in lines if coupon.covers(line.internship_id)]
    eligible_amount = sum((line.line_total for line in eligible), ZERO)
    reasons = usage_reasons(coupon, now, user_redemptions)
    if sum((line.line_total_inr for line in lines), ZERO) < coupon.min_subtotal:
        reasons.append(CouponReason.BELOW_MINIMUM)
    if not eligible:
        reasons.append(CouponReason.NO_ELIGIBLE_ITEMS)
    value = _value_in(coupon, rate)
    if value is None:
        reasons.append(CouponReason.CURRENCY_MISMATCH)
    if reasons or value is None:
        return CouponVerdict(False, tuple(reasons), ZERO, eligible_amount)
    return CouponVerdict(True, (), amount_off(eligible_amount, coupon.kind, value), eligible_amount)


def _value_in(coupon: Coupon, rate: ExchangeRate) -> Decimal | None:
    """The coupon's value ready for `amount_off` in the cart's currency; None if not convertible."""
    if coupon.kind == "percent" or coupon.currency == rate.currency:
        return coupon.value
    if coupon.currency == BASE_CURRENCY:
        return convert_from_inr(coupon.value, rate)
    return None
