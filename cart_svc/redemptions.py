"""The coupon redemption ledger, run inside the caller's (the order's) transaction.

Concurrency: redeem and release both take the coupon's row lock (SELECT … FOR UPDATE) before they
read or change anything else about that coupon, so for one coupon they run one at a time until the
order's transaction ends. Under that lock the total count and the user's held redemptions are
exact, so neither limit can be raced past; the conditional UPDATE and the table's CHECK constraint
only back this up. Both lock in the same order (coupon, then redemption row), so they cannot
deadlock with each other. The lock is held until the caller commits: keep that transaction short.

A redemption row is keyed by order_token: redeeming an order again is a no-op, and an order whose
hold was released (it expired or was cancelled) cannot take the coupon again.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from cart_svc import promotion_repository
from cart_svc.domain.coupons import Coupon, CouponReason, usage_reasons
from cart_svc.validation import check_uuid, raise_if_any
from common.audit import append_audit
from common.clock import utc_now
from common.errors import CheckoutError, ErrorCode
from common.request_context import caller
from common.tables import coupon_redemptions, coupons


async def redeem(conn: AsyncConnection, *, code: str, user_id: str, order_token: str) -> None:
    """Hold one redemption of `code` for the order, or raise CheckoutError(INVALID_COUPON) with the reasons."""
    user_id, order_token = _canonical_ids(user_id=user_id, order_token=order_token)
    code = code.upper()
    coupon = await _lock_coupon(conn, code)
    if coupon is None:
        raise _refused("code: no such coupon")
    existing = await _redemption(conn, order_token)
    if existing is not None:
        if existing.status == "held" and existing.code == code and existing.user_id == user_id:
            return  # a retried order: already counted
        raise _refused("order_token: this order already used its coupon hold; place a new order")
    reasons = _reasons(coupon, await promotion_repository.user_redemptions(conn, code, user_id))
    if reasons:
        raise _refused(*(f"code: {reason}" for reason in reasons))
    # a savepoint: if the order's code catches the refusal and goes on, nothing of it remains
    async with conn.begin_nested():
        inserted = (await conn.execute(insert(coupon_redemptions).values(
            redemption_id=str(uuid.uuid4()), code=code, user_id=user_id, order_token=order_token, status="held",
        ).on_conflict_do_nothing(index_elements=[coupon_redemptions.c.order_token])
            .returning(coupon_redemptions.c.redemption_id))).first()
        if inserted is None:
            raise _refused("order_token: this order already holds a coupon")
        count = (await conn.execute(
            update(coupons)
            .where(coupons.c.code == code,
                   or_(coupons.c.max_redemptions == 0, coupons.c.redeemed_count < coupons.c.max_redemptions))
            .values(redeemed_count=coupons.c.redeemed_count + 1)
            .returning(coupons.c.redeemed_count)
        )).scalar()
        if count is None:
            raise _refused(f"code: {CouponReason.LIMIT_REACHED}")
        await append_audit(conn, actor=user_id, entity_type="coupon", entity_id=code, action="redeem",
                           before={"redeemed_count": count - 1},
                           after={"redeemed_count": count, "order_token": order_token, "user_id": user_id,
                                  "redemption_id": inserted.redemption_id})


async def release(conn: AsyncConnection, *, order_token: str) -> bool:
    """Give the order's redemption back (order expired or cancelled). True if this call released it."""
    (order_token,) = _canonical_ids(order_token=order_token)
    existing = await _redemption(conn, order_token)
    if existing is None or existing.status != "held":
        return False
    await _lock_coupon(conn, existing.code)
    released = (await conn.execute(
        update(coupon_redemptions)
        .where(and_(coupon_redemptions.c.order_token == order_token, coupon_redemptions.c.status == "held"))
        .values(status="released", released_at=func.now())
        .returning(coupon_redemptions.c.code, coupon_redemptions.c.user_id)
    )).first()
    if released is None:
        return False  # a concurrent release got there first
    count = (await conn.execute(
        update(coupons).where(coupons.c.code == released.code)
        .values(redeemed_count=coupons.c.redeemed_count - 1).returning(coupons.c.redeemed_count)
    )).scalar_one()
    await append_audit(conn, actor=caller().user_id or "system", entity_type="coupon", entity_id=released.code,
                       action="release", before={"redeemed_count": count + 1},
                       after={"redeemed_count": count, "order_token": order_token, "user_id": released.user_id})
    return True


async def _lock_coupon(conn: AsyncConnection, code: str) -> Coupon | None:
    row = (await conn.execute(select(coupons).where(coupons.c.code == code).with_for_update())).first()
    return None if row is None else promotion_repository.coupon_from_row(row)


async def _redemption(conn: AsyncConnection, order_token: str) -> Any:
    return (await conn.execute(
        select(coupon_redemptions.c.code, coupon_redemptions.c.user_id, coupon_redemptions.c.status)
        .where(coupon_redemptions.c.order_token == order_token)
    )).first()


def _reasons(coupon: Coupon, user_held: int) -> list[str]:
    return usage_reasons(coupon, utc_now(), user_held)


def _refused(*messages: str) -> CheckoutError:
    return CheckoutError(ErrorCode.INVALID_COUPON, validation_messages=list(messages))


def _canonical_ids(**ids: str) -> list[str]:
    """Lower-case hyphenated UUIDs, as the database returns them, so comparisons are exact."""
    problems: list[str] = []
    for field, value in ids.items():
        check_uuid(problems, field, value)
    raise_if_any(problems)
    return [str(uuid.UUID(value)) for value in ids.values()]
