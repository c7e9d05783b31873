"""GST on a cart, decided by place of supply (CONTRACT "Tax").

- billing in India, same state as the seller -> CGST 9% + SGST 9%
- billing in India, another state, or no billing at all -> IGST 18%
- billing outside India -> no tax (export of services)

Tax is charged on the taxable amount (after discounts). Each tax line is rounded
half-up to 2 places on its own, so CGST + SGST can differ from the IGST the same
amount would carry by at most 0.01 (two roundings of 9% vs one of 18%).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Final

from common.money import ZERO, round_half_up
from common.regions import (
    INDIAN_STATE_CODES,
    ISO_COUNTRY_CODES,
    canonical_state,
    is_country_code,
    is_indian_state_code,
)

# The code checks live in regions.py and are re-exported here, beside the rules that use them.
__all__ = [
    "DEFAULT_SELLER_STATE",
    "INDIAN_STATE_CODES",
    "ISO_COUNTRY_CODES",
    "Billing",
    "TaxLine",
    "compute_taxes",
    "effective_tax_rate",
    "is_country_code",
    "is_indian_state_code",
    "tax_rates",
]

DEFAULT_SELLER_STATE: Final = "KA"
HOME_COUNTRY: Final = "IN"
CGST_RATE: Final = Decimal("9")
SGST_RATE: Final = Decimal("9")
IGST_RATE: Final = Decimal("18")
_HUNDRED: Final = Decimal("100")


@dataclass(frozen=True)
class Billing:
    """Where the buyer is billed. Codes are upper-cased; an Indian state must be a GST code.

    `state` is optional: an Indian address without one cannot be shown to be intra-state,
    so it is taxed as inter-state (IGST), like a cart with no billing at all.
    """

    country: str
    state: str | None = None

    def __post_init__(self) -> None:
        if not is_country_code(self.country):
            raise ValueError(f"billing country {self.country[:10]!r} is not an ISO 3166-1 alpha-2 code")
        country = self.country.upper()
        state = self.state or None
        if country == HOME_COUNTRY and state is not None:
            state = canonical_state(state)
        object.__setattr__(self, "country", country)
        object.__setattr__(self, "state", state)


@dataclass(frozen=True)
class TaxLine:
    name: str
    rate: Decimal  # percent, e.g. Decimal("9")
    amount: Decimal


def tax_rates(billing: Billing | None, seller_state: str = DEFAULT_SELLER_STATE) -> tuple[tuple[str, Decimal], ...]:
    """The (name, percent) pairs that apply, in display order."""
    seller = canonical_state(seller_state)
    if billing is None or (billing.country == HOME_COUNTRY and billing.state != seller):
        return (("IGST", IGST_RATE),)
    if billing.country == HOME_COUNTRY:
        return (("CGST", CGST_RATE), ("SGST", SGST_RATE))
    return ()


def effective_tax_rate(billing: Billing | None, seller_state: str = DEFAULT_SELLER_STATE) -> Decimal:
    """The cart's `tax_rate`: the sum of the applicable percents (18 or 0)."""
    return sum((rate for _, rate in tax_rates(billing, seller_state)), Decimal("0"))


def compute_taxes(
    taxable: Decimal, billing: Billing | None, seller_state: str = DEFAULT_SELLER_STATE
) -> tuple[TaxLine, ...]:
    """One TaxLine per applicable tax, each rounded half-up to 2 places."""
    if taxable < ZERO:
        raise ValueError(f"taxable amount must not be negative, got {taxable}")
    return tuple(
        TaxLine(name, rate, round_half_up(taxable * rate / _HUNDRED)) for name, rate in tax_rates(billing, seller_state)
    )
