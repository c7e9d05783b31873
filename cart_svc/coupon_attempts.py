"""The coupon attempts guard of ApplyCoupon (rules in cart_svc/domain/coupon_attempts.py).

The check runs inside ApplyCoupon's own unit of work (one indexed read); a refusal is counted in a
short transaction of its own after ApplyCoupon's has rolled back. Two refusals at once on one cart
are counted one after the other (the row's lock), so the count is exact.
"""

from __future__ import annotations

import datetime

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as upsert
from sqlalchemy.ext.asyncio import AsyncConnection

from cart_svc.domain.coupon_attempts import AttemptWindow, after_refusal, locked_out
from cart_svc.tables import coupon_attempts
from common.errors import CheckoutError, ErrorCode
from common.settings import Settings
from common.uow import UnitOfWorkFactory

_READ = select(coupon_attempts.c.failures, coupon_attempts.c.window_started_at).where(
    coupon_attempts.c.cart_token == bindparam("cart_token"))
_READ_LOCKED = _READ.with_for_update()
_CLAIM = (upsert(coupon_attempts).values(cart_token=bindparam("cart_token"), failures=0,
                                         window_started_at=bindparam("now"))
          .on_conflict_do_nothing(index_elements=[coupon_attempts.c.cart_token]))
_SAVE = (update(coupon_attempts).where(coupon_attempts.c.cart_token == bindparam("w_cart_token"))
         .values(failures=bindparam("failures"), window_started_at=bindparam("started_at")))


class CouponAttempts:
    def __init__(self, uow: UnitOfWorkFactory, settings: Settings) -> None:
        self._uow = uow
        self._limit = settings.coupon_attempts_per_cart
        self._window = datetime.timedelta(seconds=settings.coupon_attempt_window)

    async def refuse_if_locked_out(self, conn: AsyncConnection, cart_token: str, now: datetime.datetime) -> None:
        row = (await conn.execute(_READ, {"cart_token": cart_token})).first()
        attempts = None if row is None else AttemptWindow(row.failures, row.window_started_at)
        if locked_out(attempts, now, limit=self._limit, window=self._window):
            raise CheckoutError(ErrorCode.RATE_LIMITED, "too many coupon codes were refused on this cart",
                                suggested_action="wait a while before trying another code")

    async def count_refusal(self, cart_token: str, now: datetime.datetime) -> None:
        async with self._uow() as uow:
            await uow.conn.execute(_CLAIM, {"cart_token": cart_token, "now": now})
            row = (await uow.conn.execute(_READ_LOCKED, {"cart_token": cart_token})).one()
            attempts = AttemptWindow(row.failures, row.window_started_at) if row.failures else None
            counted = after_refusal(attempts, now, self._window)
            await uow.conn.execute(_SAVE, {"w_cart_token": cart_token, "failures": counted.failures,
                                           "started_at": counted.started_at})
            await uow.commit()
