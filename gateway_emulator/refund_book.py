"""Refunds at both emulated gateways: what each payment has refunded, the refunds themselves, the
gateways' refund idempotency keys, and the settling of a refund a while after it was accepted
(`refund_settle_ms`), processed or, with `refund_fail_rate`, failed, with its webhooks.

A refund holds its amount from its creation until it fails, so the refunds of one payment never
add up to more than it captured, as at the real gateways.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from collections.abc import Callable
from typing import Any

from .faults import FaultBook


@dataclasses.dataclass
class EmulatedRefund:
    id: str
    gateway: str  # razorpay | stripe
    payment_id: str  # Razorpay payment id, or Stripe PaymentIntent id
    amount: int
    currency: str  # Razorpay upper case, Stripe lower case, as each answers
    notes: dict[str, Any]
    created_at: int
    status: str = "pending"  # Razorpay: pending → processed | failed; Stripe: pending → succeeded | failed
    receipt: str | None = None
    reason: str | None = None
    charge_id: str | None = None
    failure_reason: str | None = None


@dataclasses.dataclass(frozen=True)
class KeptAnswer:
    fingerprint: Any
    status: int
    body: dict[str, Any]


Settled = Callable[[EmulatedRefund], None]


class RefundBook:
    def __init__(self, faults: FaultBook) -> None:
        self._faults = faults
        self.refunds: dict[str, EmulatedRefund] = {}
        self.keys: dict[tuple[str, str], KeptAnswer] = {}
        self._random = random.Random()
        self._tasks: set[asyncio.Task[None]] = set()
        self.on_settled: dict[str, Settled] = {}

    def clear(self) -> None:
        for task in self._tasks:
            task.cancel()
        self._tasks.clear()
        self.refunds.clear()
        self.keys.clear()

    def of_payment(self, payment_id: str) -> list[EmulatedRefund]:
        return [r for r in self.refunds.values() if r.payment_id == payment_id]

    def held(self, payment_id: str) -> int:
        return sum(r.amount for r in self.of_payment(payment_id) if r.status != "failed")

    def rejects(self, gateway: str) -> bool:
        rate = self._faults.get(gateway).refund_reject_rate
        return rate > 0 and self._random.random() < rate

    def add(self, refund: EmulatedRefund) -> None:
        self.refunds[refund.id] = refund
        faults = self._faults.get(refund.gateway)
        fails = faults.refund_fail_rate > 0 and self._random.random() < faults.refund_fail_rate
        task = asyncio.get_running_loop().create_task(self._settle(refund, fails, faults.refund_settle_ms / 1000))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _settle(self, refund: EmulatedRefund, fails: bool, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        if refund.status != "pending":
            return
        if fails:
            refund.status = "failed"
            refund.failure_reason = "declined" if refund.gateway == "stripe" else "The refund failed at the bank"
        else:
            refund.status = "processed" if refund.gateway == "razorpay" else "succeeded"
        callback = self.on_settled.get(refund.gateway)
        if callback is not None:
            callback(refund)

    def now(self) -> int:
        return int(time.time())
