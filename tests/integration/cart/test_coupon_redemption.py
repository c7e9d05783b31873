"""The redemption ledger against real PostgreSQL, with real concurrent transactions.

Every concurrent attempt opens its transaction and waits at a barrier until all are open, so
the redemptions genuinely race instead of running one after another.
"""

from __future__ import annotations

import asyncio
import datetime
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from cart_svc.domain.coupons import UNUSABLE_CODE, CouponReason
from cart_svc.redemptions import CouponLedger
from cart_svc.repository import Repository
from cart_svc.tables import audit_log, coupon_redemptions, coupons, plumbing
from common.db import create_engine
from common.errors import CheckoutError, ErrorCode
from common.uow import UnitOfWork
from tests.support.tokens import new_user

LEDGER = CouponLedger(Repository())

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
async def wide_engine(settings, cart_engine) -> AsyncIterator[AsyncEngine]:
    # `cart_engine` first: it loads the catalog; this one has room for 25+ transactions at once
    wide = create_engine(settings, "cart", pool_size=30)
    yield wide
    await wide.dispose()


async def new_coupon(engine: AsyncEngine, **values) -> str:
    code = f"R{uuid.uuid4().hex[:12].upper()}"
    async with engine.begin() as conn:
        await conn.execute(insert(coupons).values(code=code, kind="percent", value=Decimal("10"), **values))
    return code


async def ledger(engine: AsyncEngine, code: str) -> tuple[int, int]:
    """(redeemed_count, held rows) of a coupon."""
    async with engine.connect() as conn:
        count = (await conn.execute(select(coupons.c.redeemed_count).where(coupons.c.code == code))).scalar_one()
        held = (await conn.execute(select(func.count()).select_from(coupon_redemptions).where(
            coupon_redemptions.c.code == code, coupon_redemptions.c.status == "held"))).scalar_one()
    return count, held


async def redeem_once(engine: AsyncEngine, code: str, user_id: str, order_token: str) -> None:
    async with UnitOfWork(engine, plumbing) as uow:
        await LEDGER.redeem(uow, code=code, user_id=user_id, order_token=order_token)
        await uow.commit()


async def release_once(engine: AsyncEngine, order_token: str) -> bool:
    async with UnitOfWork(engine, plumbing) as uow:
        released = await LEDGER.release(uow, order_token=order_token, actor="test")
        await uow.commit()
    return released


async def race(engine: AsyncEngine, code: str, attempts: list[tuple[str, str]]) -> list[BaseException | None]:
    """Redeem every (user_id, order_token) at once, each in its own transaction; the error of each, or None."""
    barrier = asyncio.Barrier(len(attempts))

    async def attempt(user_id: str, order_token: str) -> None:
        async with UnitOfWork(engine, plumbing) as uow:
            await uow.conn.execute(select(1))  # the connection and transaction are really open
            await barrier.wait()
            await LEDGER.redeem(uow, code=code, user_id=user_id, order_token=order_token)
            await asyncio.sleep(0.02)  # keep the hold open while the others pile up on the lock
            await uow.commit()

    return list(await asyncio.gather(*(attempt(*pair) for pair in attempts), return_exceptions=True))


def refusal_reasons(error: BaseException | None) -> list[str]:
    assert isinstance(error, CheckoutError) and error.code is ErrorCode.INVALID_COUPON, error
    return error.validation_messages


async def test_25_concurrent_orders_never_exceed_a_limit_of_3(wide_engine):
    code = await new_coupon(wide_engine, max_redemptions=3)
    results = await race(wide_engine, code, [(new_user(), str(uuid.uuid4())) for _ in range(25)])
    assert results.count(None) == 3
    for error in (result for result in results if result is not None):
        assert refusal_reasons(error) == [f"code: {CouponReason.LIMIT_REACHED}"]
    assert await ledger(wide_engine, code) == (3, 3)
    async with wide_engine.connect() as conn:
        audited = (await conn.execute(select(func.count()).select_from(audit_log).where(
            audit_log.c.entity_type == "coupon", audit_log.c.entity_id == code, audit_log.c.action == "redeem"))).scalar_one()
    assert audited == 3


async def test_one_user_racing_10_orders_gets_the_per_user_limit_of_1(wide_engine):
    code = await new_coupon(wide_engine, max_redemptions_per_user=1)
    user = new_user()
    results = await race(wide_engine, code, [(user, str(uuid.uuid4())) for _ in range(10)])
    assert results.count(None) == 1
    for error in (result for result in results if result is not None):
        assert refusal_reasons(error) == [f"code: {CouponReason.USER_LIMIT_REACHED}"]
    assert await ledger(wide_engine, code) == (1, 1)
    await redeem_once(wide_engine, code, new_user(), str(uuid.uuid4()))  # another user is not limited by this one
    assert await ledger(wide_engine, code) == (2, 2)


async def test_the_same_order_redeemed_twice_counts_once(wide_engine):
    code = await new_coupon(wide_engine, max_redemptions=5)
    user, order = new_user(), str(uuid.uuid4())
    await redeem_once(wide_engine, code, user, order)
    await redeem_once(wide_engine, code.lower(), user, order.upper())  # a retry, spelled differently
    assert await ledger(wide_engine, code) == (1, 1)
    results = await race(wide_engine, code, [(user, order)] * 8)  # retries racing each other
    assert results == [None] * 8
    assert await ledger(wide_engine, code) == (1, 1)


async def test_release_frees_the_slot_once_and_a_new_order_can_take_it(wide_engine):
    code = await new_coupon(wide_engine, max_redemptions=1, max_redemptions_per_user=1)
    user, first, second = new_user(), str(uuid.uuid4()), str(uuid.uuid4())
    await redeem_once(wide_engine, code, user, first)
    with pytest.raises(CheckoutError):
        await redeem_once(wide_engine, code, user, second)
    assert await release_once(wide_engine, first) is True
    assert await release_once(wide_engine, first) is False
    assert await release_once(wide_engine, str(uuid.uuid4())) is False  # never held anything
    assert await ledger(wide_engine, code) == (0, 0)
    await redeem_once(wide_engine, code, user, second)
    assert await ledger(wide_engine, code) == (1, 1)
    with pytest.raises(CheckoutError) as refused:  # a released (expired, cancelled) order stays released
        await redeem_once(wide_engine, code, user, first)
    assert refusal_reasons(refused.value)[0].startswith("order_token:")
    async with wide_engine.connect() as conn:
        actions = (await conn.execute(select(audit_log.c.action).where(
            audit_log.c.entity_type == "coupon", audit_log.c.entity_id == code).order_by(audit_log.c.id))).scalars().all()
    assert actions == ["redeem", "release", "redeem"]


async def test_concurrent_releases_decrement_once(wide_engine):
    code = await new_coupon(wide_engine, max_redemptions=2)
    order = str(uuid.uuid4())
    await redeem_once(wide_engine, code, new_user(), order)

    assert sorted(await asyncio.gather(*(release_once(wide_engine, order) for _ in range(6)))) == [False] * 5 + [True]
    assert await ledger(wide_engine, code) == (0, 0)


async def test_refusals_name_every_reason_and_leave_nothing_behind(wide_engine):
    past = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
    expired = await new_coupon(wide_engine, starts_at=past - datetime.timedelta(days=1), ends_at=past)
    future = await new_coupon(wide_engine, starts_at=datetime.datetime(2999, 1, 1, tzinfo=datetime.UTC))
    user = new_user()
    for code, reason in ((expired, CouponReason.EXPIRED), (future, CouponReason.NOT_STARTED)):
        async with UnitOfWork(wide_engine, plumbing) as uow:  # the caller catches the refusal and commits anyway
            with pytest.raises(CheckoutError) as refused:
                await LEDGER.redeem(uow, code=code, user_id=user, order_token=str(uuid.uuid4()))
            await uow.commit()
        assert refusal_reasons(refused.value) == [f"code: {reason}"]
        assert await ledger(wide_engine, code) == (0, 0)
    with pytest.raises(CheckoutError) as unknown:
        await redeem_once(wide_engine, "NO-SUCH-CODE", user, str(uuid.uuid4()))
    assert refusal_reasons(unknown.value) == [f"code: {UNUSABLE_CODE}"]
    with pytest.raises(CheckoutError) as bad_ids:
        await redeem_once(wide_engine, expired, "not-a-user", "not-a-token")
    assert bad_ids.value.code is ErrorCode.VALIDATION_FAILED and len(bad_ids.value.validation_messages) == 2
