"""ConvertCart and ReleaseCart: what order_svc's saga asks of the cart (docs/ARCHITECTURE.md).

ConvertCart, in one unit of work: lock the cart (every conversion of one cart runs one at a time),
check it, re-price it from the catalog as it stands now (sale, coupon, exchange rate, tax from the
billing), redeem its coupon for the order under the coupon's limits, mark it converted for the
order and keep the priced snapshot. All or nothing: a refusal changes nothing. Idempotent on the
order token (a repeat answers the kept snapshot); a cart that an order of the same user already
converted answers that order's snapshot, so a double submit gets the first order.

ReleaseCart gives back what ConvertCart took for an order that never came to be, expired or was
cancelled: the coupon hold, and (reopen_cart) the cart itself. Idempotent: a repeat finds nothing
left to give back and says so.

Locks: the cart first, then the coupon (redemptions.py), in both, so they cannot deadlock.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from cart_svc import events
from cart_svc.commands import BillingChoice, ConvertCart, ReleaseCart
from cart_svc.domain.conversion import ConvertedCart, convert
from cart_svc.domain.tax import Billing
from cart_svc.prices import Pricer, totals_of
from cart_svc.redemptions import CouponLedger
from cart_svc.repository import Conversion, Repository
from cart_svc.validation import check_billing, check_text, check_uuid, raise_if_any
from common.clock import utc_now
from common.errors import CheckoutError, ErrorCode
from common.settings import Settings
from common.uow import UnitOfWorkFactory

if TYPE_CHECKING:
    from cart_svc.cache import CartCache

RELEASE_REASONS_MAX = 64


@dataclasses.dataclass(frozen=True)
class Released:
    coupon_released: bool
    cart_reopened: bool


class ConversionService:
    def __init__(self, uow: UnitOfWorkFactory, settings: Settings, *, repository: Repository | None = None,
                 clock: Callable[[], datetime.datetime] = utc_now, cache: CartCache | None = None) -> None:
        self._uow = uow
        self._repo = repository or Repository()
        self._pricer = Pricer(self._repo, settings.seller_state)
        self._ledger = CouponLedger(self._repo, clock)
        self._clock = clock
        self._cache = cache
        self._ttl = datetime.timedelta(seconds=settings.cart_ttl)

    async def convert(self, command: ConvertCart) -> ConvertedCart:
        cart_token, order_token, user_id, billing = _checked(command)
        repo = self._repo
        async with self._uow() as uow:
            conn = uow.conn
            # The cart locked, the order's conversion and the cart's plans, read by one statement;
            # the last two in its snapshot, taken before the lock if the lock was waited for.
            cart, earlier, plans = await repo.lock_cart_for_conversion(conn, cart_token, order_token)
            if cart is None:
                raise CheckoutError(ErrorCode.CART_NOT_FOUND)
            if earlier is not None:  # a repeat: read again under the lock (a release may have come between)
                earlier = await repo.conversion(conn, order_token)
            # None then, one now: another ConvertCart of this order held the cart meanwhile; the
            # cart as locked says so (converted: that conversion is the answer below; reopened since:
            # the order token is refused as used).
            if earlier is not None:
                repeated = _repeat(earlier, cart_token, user_id)
                await uow.commit()  # nothing written: a commit, not a rollback (common/uow.py says why)
                return repeated
            if cart.user_id is not None and cart.user_id != user_id:
                raise CheckoutError(ErrorCode.NOT_ALLOWED, "this cart belongs to another user")
            if cart.status == "converted":
                holder = await repo.converted_of_cart(conn, cart.token)
                if holder is not None and holder.user_id == user_id:
                    await uow.commit()  # nothing written
                    return holder.snapshot  # a double submit of one cart: the first order is the answer
                raise CheckoutError(ErrorCode.CART_CONVERTED)
            now = self._clock()
            cart.ensure_open(now)
            if not cart.lines:
                raise CheckoutError(ErrorCode.CART_EMPTY)
            before = {"status": cart.status, "user_id": cart.user_id, "version": cart.version}
            if any(line.plan.plan_id not in plans for line in cart.lines):  # a line or a plan newer than the snapshot
                plans = await repo.plans_by_id(conn, [line.plan.plan_id for line in cart.lines])
            cart.refresh_plans(plans)
            owned = dataclasses.replace(cart, user_id=user_id, lines=list(cart.lines))  # the buyer's limits count
            # The coupon's lock before pricing (the cart's, then the coupon's: the order both ledger
            # paths take), so that pricing and the redemption read the coupon once, as it stays.
            facts = await self._ledger.lock(conn, code=cart.coupon_code, user_id=user_id) if cart.coupon_code else None
            prices = await self._pricer.price(conn, owned, now, billing=billing, coupon_facts=facts)
            if cart.coupon_code:
                verdict = prices.coupon_verdict
                if verdict is not None and not verdict.applicable:
                    raise CheckoutError(ErrorCode.INVALID_COUPON,
                                        validation_messages=[f"code: {reason}" for reason in verdict.reasons],
                                        suggested_action="remove the coupon from the cart and place the order again")
                await self._ledger.redeem(uow, code=cart.coupon_code, user_id=user_id, order_token=order_token,
                                          locked=facts)
            cart.convert(order_token, user_id, now)
            snapshot = convert(cart, prices, order_token=order_token, user_id=user_id, billing=billing, now=now)
            if not await repo.save_and_insert_conversion(conn, cart, totals_of(prices), snapshot):
                raise CheckoutError(ErrorCode.VALIDATION_FAILED,
                                    validation_messages=["order_token: already used to convert another cart"])
            uow.publish(events.CONVERTED, cart.token, events.cart_event(cart, prices.total, now,
                                                                        order_token=order_token))
            uow.audit(actor=user_id, entity_type="cart", entity_id=cart.token, action="converted", before=before,
                      after={"status": cart.status, "user_id": user_id, "order_token": order_token,
                             "currency": snapshot.currency, "total": snapshot.total,
                             "discount_code": snapshot.discount_code, "exchange_rate": snapshot.exchange_rate})
            await uow.commit()
        await self._forget(cart.token, cart.version)
        return snapshot

    async def release(self, command: ReleaseCart, *, actor: str) -> Released:
        problems: list[str] = []
        check_uuid(problems, "order_token", command.order_token)
        check_text(problems, "reason", command.reason, RELEASE_REASONS_MAX)
        raise_if_any(problems)
        order_token = str(uuid.UUID(command.order_token))
        repo = self._repo
        reopened = None
        async with self._uow() as uow:
            conn = uow.conn
            conversion = await repo.conversion(conn, order_token)
            cart = None
            if command.reopen_cart and conversion is not None and conversion.status == "converted":
                cart = await repo.get_cart(conn, conversion.cart_token, for_update=True)  # the cart first
                conversion = await repo.conversion(conn, order_token, for_update=True)
            coupon_released = await self._ledger.release(uow, order_token=order_token, actor=actor,
                                                         reason=command.reason)
            if (cart is not None and conversion is not None and conversion.status == "converted"
                    and cart.status == "converted" and cart.order_token == order_token):
                now = self._clock()
                before = {"status": cart.status, "order_token": order_token, "version": cart.version}
                await repo.release_conversion(conn, order_token)
                cart.reopen(now, self._ttl)
                cart.refresh_plans(await repo.plans_by_id(conn, [line.plan.plan_id for line in cart.lines]))
                prices = await self._pricer.price(conn, cart, now)
                await repo.save_cart(conn, cart, totals_of(prices))
                uow.publish(events.REOPENED, cart.token, events.cart_event(cart, prices.total, now,
                                                                           order_token=order_token))
                uow.audit(actor=actor, entity_type="cart", entity_id=cart.token, action="reopened", before=before,
                          after={"status": cart.status, "expires_at": cart.expires_at, "reason": command.reason})
                reopened = (cart.token, cart.version)
            await uow.commit()
        if reopened is not None:
            await self._forget(*reopened)
        return Released(coupon_released, reopened is not None)

    async def _forget(self, token: str, version: int) -> None:
        """After commit: the cached copy of the cart gives way to the new version."""
        if self._cache is not None:
            await asyncio.shield(self._cache.carts_closed([(token, version)]))


def _checked(command: ConvertCart) -> tuple[str, str, str, Billing | None]:
    problems: list[str] = []
    check_uuid(problems, "cart_token", command.cart_token)
    check_uuid(problems, "order_token", command.order_token)
    check_uuid(problems, "user_id", command.user_id)
    check_billing(problems, command.billing.country, command.billing.state)
    raise_if_any(problems)
    return (str(uuid.UUID(command.cart_token)), str(uuid.UUID(command.order_token)), str(uuid.UUID(command.user_id)),
            _billing(command.billing))


def _billing(choice: BillingChoice) -> Billing | None:
    return Billing(choice.country, choice.state or None) if choice.country else None


def _repeat(earlier: Conversion, cart_token: str, user_id: str) -> ConvertedCart:
    """ConvertCart again for an order that already converted: its own snapshot, nothing else."""
    if earlier.cart_token != cart_token:
        raise CheckoutError(ErrorCode.VALIDATION_FAILED,
                            validation_messages=["order_token: already used to convert another cart"])
    if earlier.user_id != user_id:
        raise CheckoutError(ErrorCode.NOT_ALLOWED, "this order belongs to another user")
    if earlier.status != "converted":
        raise CheckoutError(ErrorCode.VALIDATION_FAILED,
                            validation_messages=["order_token: this order was released (it never came to be, "
                                                 "expired or was cancelled); place a new order"])
    return earlier.snapshot
