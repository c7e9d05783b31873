"""The order lifecycle as an explicit state machine (CONTRACT "Orders and payment").

    pending ──► awaiting_payment ──► paid ──► fulfilled ──► refunded  (every captured rupee refunded)
                                      └──────────────────────► refunded
       │  │           │  ▲          ▲
       │  │           ▼  │ (new     │
       │  │     payment_failed ─────┘  (a late capture of a failed attempt)
       │  └───────────────────────────► paid  (a capture before the session was recorded)
       │              │
       └──────────────┴──► expired / cancelled

Every transition goes through `transition`, which refuses anything not drawn above with 2102;
order_svc.moves.move_order is its only caller that writes, with one audit row and one event each.
"""

from __future__ import annotations

from typing import Final, Literal

from common.errors import CheckoutError, ErrorCode

OrderStatus = Literal["pending", "awaiting_payment", "paid", "fulfilled", "payment_failed", "expired", "cancelled",
                      "refunded"]

ALLOWED: Final[dict[str, frozenset[str]]] = {
    "pending": frozenset({"awaiting_payment", "paid", "payment_failed", "expired", "cancelled"}),
    "awaiting_payment": frozenset({"paid", "payment_failed", "expired", "cancelled"}),
    "payment_failed": frozenset({"awaiting_payment", "paid", "expired", "cancelled"}),
    "paid": frozenset({"fulfilled", "refunded"}),
    "fulfilled": frozenset({"refunded"}),
    "refunded": frozenset(),
    "expired": frozenset(),
    "cancelled": frozenset(),
}

# An order in one of these may still receive money; the coupon it holds stays held.
MAY_BE_PAID: Final = frozenset({"pending", "awaiting_payment", "payment_failed"})
# A fully refunded order in one of these becomes `refunded`.
REFUNDABLE: Final = frozenset({"paid", "fulfilled"})
# A new payment attempt may be opened only from these.
ATTEMPTABLE: Final = frozenset({"pending", "awaiting_payment", "payment_failed"})


def can_transition(current: str, target: str) -> bool:
    return target in ALLOWED.get(current, frozenset())


def transition(current: str, target: str) -> str:
    if not can_transition(current, target):
        raise CheckoutError(ErrorCode.ORDER_NOT_PAYABLE, f"an order cannot go from {current} to {target}",
                            suggested_action="read the order for its current status")
    return target
