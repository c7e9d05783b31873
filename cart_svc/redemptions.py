"""The coupon redemption ledger, run inside the caller's unit of work (ConvertCart's, ReleaseCart's,
the cart-orders consumer's).

Concurrency: redeem and release both take the coupon's row lock (SELECT … FOR UPDATE) before they
read or change anything else about that coupon, so for one coupon they run one at a time until the
unit of work ends. Under that lock the total count and the user's held redemptions are exact, so
neither limit can be raced past; the conditional UPDATE and the table's CHECK constraint only back
this up. Both lock in the same order (coupon, then redemption row), so they cannot deadlock with
each other; ConvertCart and ReleaseCart lock the cart before either. The lock is held until the
caller commits: keep that unit of work short. ConvertCart takes it (`lock`) before it prices the
cart, so that pricing and `redeem` share the one read of the coupon and the user's count.

A redemption row is keyed by order_token: redeeming an order again is a no-op, and an order whose
hold was released (it expired, was cancelled or never came to be) cannot take the coupon again.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncConnection

from cart_svc.domain.coupons import UNUSABLE_CODE, CouponReason, usage_reasons
from cart_svc.prices import CouponFacts
from cart_svc.repository import HoldRefused, Repository
from cart_svc.validation import check_uuid, raise_if_any
from common.clock import utc_now
from common.errors import CheckoutError, ErrorCode
from common.uow import UnitOfWork


class CouponLedger:
    def __init__(self, repository: Repository, clock: Callable[[], datetime.datetime] = utc_now) -> None:
        self._repository = repository
        self._clock = clock

    async def lock(self, conn: AsyncConnection, *, code: str, user_id: str) -> CouponFacts:
        """Take the coupon's row lock and read it with the user's held redemptions of it: what
        `redeem` (given them as `locked`) and the pricing of the same unit of work need."""
        (user_id,) = _canonical_ids(user_id=user_id)
        coupon = await self._repository.lock_coupon(conn, code.upper())
        return coupon, 0 if coupon is None else await self._repository.user_redemptions(conn, coupon.code, user_id)

    async def redeem(self, uow: UnitOfWork, *, code: str, user_id: str, order_token: str,
                     locked: CouponFacts | None = None) -> None:
        """Hold one redemption of `code` for the order, or raise CheckoutError(INVALID_COUPON) with
        the reasons (the caller must then roll back). `locked`: what `lock` read in this unit of work."""
        user_id, order_token = _canonical_ids(user_id=user_id, order_token=order_token)
        code = code.upper()
        repo, conn = self._repository, uow.conn
        coupon, used = locked if locked is not None else await self.lock(conn, code=code, user_id=user_id)
        if coupon is None:
            raise _refused(f"code: {UNUSABLE_CODE}")
        existing = await repo.redemption_of(conn, order_token)
        if existing is not None:
            if existing.status == "held" and existing.code == code and existing.user_id == user_id:
                return  # a retried order: already counted
            raise _refused("order_token: this order already used its coupon hold; place a new order")
        reasons = usage_reasons(coupon, self._clock(), used)
        if reasons:
            raise _refused(*(f"code: {reason}" for reason in reasons))
        try:
            redemption_id, count = await repo.hold_redemption(conn, code=code, user_id=user_id, order_token=order_token)
        except HoldRefused as refusal:
            if refusal.reason == "order_taken":
                raise _refused("order_token: this order already holds a coupon") from None
            raise _refused(f"code: {CouponReason.LIMIT_REACHED}") from None
        uow.audit(actor=user_id, entity_type="coupon", entity_id=code, action="redeem",
                  before={"redeemed_count": count - 1},
                  after={"redeemed_count": count, "order_token": order_token, "user_id": user_id,
                         "redemption_id": redemption_id})

    async def release(self, uow: UnitOfWork, *, order_token: str, actor: str, reason: str = "") -> bool:
        """Give the order's redemption back. True if this call released it."""
        (order_token,) = _canonical_ids(order_token=order_token)
        repo, conn = self._repository, uow.conn
        existing = await repo.redemption_of(conn, order_token)
        if existing is None or existing.status != "held":
            return False
        await repo.lock_coupon(conn, existing.code)
        released = await repo.release_redemption(conn, order_token)
        if released is None:
            return False  # a concurrent release got there first
        uow.audit(actor=actor, entity_type="coupon", entity_id=released.code, action="release",
                  before={"redeemed_count": released.redeemed_count + 1},
                  after={"redeemed_count": released.redeemed_count, "order_token": order_token,
                         "user_id": released.user_id, "reason": reason})
        return True


def _refused(*messages: str) -> CheckoutError:
    return CheckoutError(ErrorCode.INVALID_COUPON, validation_messages=list(messages))


def _canonical_ids(**ids: str) -> list[str]:
    """Lower-case hyphenated UUIDs, as the database returns them, so comparisons are exact."""
    problems: list[str] = []
    for field, value in ids.items():
        check_uuid(problems, field, value)
    raise_if_any(problems)
    return [str(uuid.UUID(value)) for value in ids.values()]
