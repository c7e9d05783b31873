"""Refunds of a captured payment, decided without I/O (CONTRACT.md Additions "Refunds (admin)").

    pending ──► processed   the gateway paid the money back: final
       └──────► failed      the gateway refused or gave up: final; its amount is free again

What is left to refund = captured − every refund not `failed` (a pending refund holds its amount
until the gateway settles it, so two requests can never both take the last rupee). Amounts are
Decimals with two places in the session's currency; the gateway gets them in minor units.
"""

from __future__ import annotations

import hashlib
import re
from decimal import Decimal
from typing import Final, Literal

from common.errors import CheckoutError, ErrorCode
from common.money import MAX_AMOUNT, ZERO, format_amount

RefundStatus = Literal["pending", "processed", "failed"]
Settlement = Literal["settle", "duplicate", "conflict"]

ALLOWED: Final[dict[str, frozenset[str]]] = {
    "pending": frozenset({"processed", "failed"}),
    "processed": frozenset(),
    "failed": frozenset(),
}
MAX_REASON: Final = 255
# ASCII digits only, at most two places, no sign or exponent; "0" is refused by the bound below.
_AMOUNT_RE: Final = re.compile(r"[0-9]{1,12}(?:\.[0-9]{1,2})?", re.ASCII)


def can_move(current: str, target: str) -> bool:
    return target in ALLOWED.get(current, frozenset())


def judge_settlement(current: str, reported: str) -> Settlement:
    """What a gateway's word (webhook, reconciliation, the create's own answer) does to a refund:
    move it (`settle`), nothing (`duplicate`: we know it already, or it says `pending`), or a
    report that contradicts a final status (`conflict`: audited for review, nothing changes)."""
    if reported == current or reported == "pending":
        return "duplicate"
    if can_move(current, reported):
        return "settle"
    return "conflict"


def check_amount(problems: list[str], text: str) -> Decimal | None:
    """The requested amount: empty = all that is left (None); otherwise a decimal string > 0 with at
    most two places. Each problem names the field (1000)."""
    if text == "":
        return None
    if not _AMOUNT_RE.fullmatch(text):
        problems.append("amount: a decimal string with at most 2 places, e.g. \"100.00\"")
        return None
    value = Decimal(text)
    if value <= ZERO:
        problems.append("amount: must be greater than 0")
        return None
    if value > MAX_AMOUNT:
        problems.append(f"amount: at most {MAX_AMOUNT}")
        return None
    return value.quantize(Decimal("0.01"))


def left_to_refund(captured: Decimal, held: Decimal) -> Decimal:
    """`held`: the sum of the session's refunds that are pending or processed."""
    return max(captured - held, ZERO)


def amount_to_refund(requested: Decimal | None, captured: Decimal, held: Decimal, currency: str) -> Decimal:
    """The amount of a new refund, or 3301 when it would take more than is left (or nothing is left)."""
    left = left_to_refund(captured, held)
    amount = left if requested is None else requested
    if left <= ZERO:
        raise CheckoutError(ErrorCode.REFUND_EXCEEDS_REMAINING,
                            f"nothing is left to refund: {format_amount(captured)} {currency} captured, "
                            f"{format_amount(held)} refunded or being refunded")
    if amount > left:
        raise CheckoutError(ErrorCode.REFUND_EXCEEDS_REMAINING,
                            f"{format_amount(amount)} {currency} is more than the {format_amount(left)} {currency} "
                            "left to refund", suggested_action="list the order's refunds and ask for at most what is left")
    return amount


def is_fully_refunded(captured: Decimal, processed: Decimal) -> bool:
    return captured > ZERO and processed >= captured


def request_fingerprint(order_token: str, amount_text: str, reason: str) -> str:
    """The request an Idempotency-Key stands for: the same order, amount (as sent) and reason."""
    canonical = "\n".join(("CreateRefund", order_token, amount_text, reason))
    return hashlib.sha256(canonical.encode()).hexdigest()
