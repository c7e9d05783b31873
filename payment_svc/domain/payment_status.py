"""A payment session's status only moves forward (CONTRACT "Orders and payment").

    pending ──► captured            captured is final: nothing moves it back
       │  └──► failed ──► captured  a later successful payment of the same gateway order
       └─────► expired ──► captured the gateway took the money after our 30 minutes: money is real
"""

from __future__ import annotations

from typing import Final, Literal

PaymentStatus = Literal["pending", "captured", "failed", "expired"]

ALLOWED: Final[dict[str, frozenset[str]]] = {
    "pending": frozenset({"captured", "failed", "expired"}),
    "failed": frozenset({"captured"}),
    "expired": frozenset({"captured"}),
    "captured": frozenset(),
}


def can_move(current: str, target: str) -> bool:
    return target in ALLOWED.get(current, frozenset())
