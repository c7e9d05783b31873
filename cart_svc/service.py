"""Cart use cases: each one validates, then reads and changes the cart in one unit of work.

Every change locks the cart row (SELECT … FOR UPDATE), applies a domain method, re-prices the
cart from the catalog and stores it with its totals. Reads never lock. The other use cases of the
service live beside this one: catalog.py (catalog reads), admin.py (the admin's writes),
conversions.py (ConvertCart and ReleaseCart, for order_svc), redemptions.py (the coupon ledger).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncConnection

from cart_svc import access, events
from cart_svc.commands import BillingChoice, ItemChoice, NewCart
from cart_svc.coupon_attempts import CouponAttempts
from cart_svc.domain.cart import Cart, PlanRef
from cart_svc.domain.coupons import UNUSABLE_CODE
from cart_svc.domain.pricing import PriceBreakdown
from cart_svc.domain.tax import Billing
from cart_svc.prices import Pricer, totals_of
from cart_svc.repository import Repository
from cart_svc.validation import (
    MAX_ITEMS_PER_REQUEST,
    check_analytics,
    check_billing,
    check_coupon_code,
    check_currency,
    check_item_choice,
    check_sale_slug,
    check_text,
    check_uuid,
    raise_if_any,
)
from common.clock import utc_now
from common.errors import CheckoutError, ErrorCode
from common.request_context import Caller
from common.settings import Settings
from common.uow import UnitOfWorkFactory, reading

if TYPE_CHECKING:
    from cart_svc.cache import CartCache
    from cart_svc.catalog_cache import CatalogCache

Clock = Callable[[], datetime.datetime]


@dataclasses.dataclass(frozen=True)
class CartView:
    cart: Cart
    prices: PriceBreakdown
    now: datetime.datetime

    @property
    def status(self) -> str:
        """An open cart past its expiry reads as expired even before the sweeper marks it."""
        if self.cart.status in ("draft", "active") and self.now >= self.cart.expires_at:
            return "expired"
        return self.cart.status


@dataclasses.dataclass(frozen=True)
class EstimateView:
    cart_token: str
    prices: PriceBreakdown
    expires_at: datetime.datetime


@dataclasses.dataclass(frozen=True)
class AuthView:
    authenticated: bool
    user_id: str
    owns_cart: bool
    cart_token: str


@dataclasses.dataclass(frozen=True)
class DiscountCandidate:
    code: str
    description: str
    applicable: bool
    reason: str


Change = Callable[[AsyncConnection, Cart, datetime.datetime], Awaitable[None]]


class CartService:
    def __init__(self, uow: UnitOfWorkFactory, settings: Settings, *, repository: Repository | None = None,
                 clock: Clock = utc_now, cache: CartCache | None = None, catalog: CatalogCache | None = None) -> None:
        """`catalog`: the process's catalog cache, where CreateCart looks its plans up."""
        self._uow = uow
        self._catalog = catalog
        self._repo = repository or Repository()
        self._pricer = Pricer(self._repo, settings.seller_state)
        self._cache = cache
        self._settings = settings
        self._clock = clock
        self._ttl = datetime.timedelta(seconds=settings.cart_ttl)
        self._attempts = CouponAttempts(uow, settings)

    # -- reads -------------------------------------------------------------------------------------
    async def get_cart(self, caller: Caller, token: str) -> CartView:
        _check_token(token, "token")
        async with reading(self._uow) as uow:
            cart = await self._load(uow.conn, token)
            access.ensure_may_touch(cart, caller)
            view = await self._view(uow.conn, cart)
        if self._cache:
            await self._cache.cart_read(view)
        return view

    async def estimate(self, caller: Caller, token: str, billing: BillingChoice, currency: str) -> EstimateView:
        problems: list[str] = []
        check_uuid(problems, "cart_token", token)
        check_billing(problems, billing.country, billing.state)
        check_currency(problems, "currency", currency)
        raise_if_any(problems)
        async with reading(self._uow) as uow:
            cart = await self._load(uow.conn, token)
            access.ensure_may_touch(cart, caller)
            now = self._clock()
            prices = await self._pricer.price(uow.conn, cart, now, billing=_billing(billing), currency=currency or None)
            estimate = EstimateView(cart.token, prices, now + datetime.timedelta(seconds=self._settings.pricing_ttl))
        if self._cache:
            await self._cache.estimate_read(cart.version, cart.token, billing.country, billing.state, currency, estimate)
        return estimate

    async def discounts(self, caller: Caller, token: str) -> list[DiscountCandidate]:
        """The cart's sale, the listed coupons and the cart's own coupon, each with why it does not apply.
        Unlisted codes are never disclosed."""
        _check_token(token, "token")
        async with reading(self._uow) as uow:
            conn = uow.conn
            cart = await self._load(conn, token)
            access.ensure_may_touch(cart, caller)
            now = self._clock()
            candidates: list[DiscountCandidate] = []
            sale = await self._repo.get_sale(conn, cart.sale_slug) if cart.sale_slug else None
            if sale is not None:
                covered = any(sale.covers(line.plan.internship_id) for line in cart.lines)
                reason = ("sale is not running now" if not sale.is_active(now)
                          else "" if covered else "sale does not cover any internship in the cart")
                candidates.append(DiscountCandidate(sale.slug, sale.description, not reason, reason))
            for coupon in await self._repo.listed_coupons(conn, also=cart.coupon_code):
                trial = dataclasses.replace(cart, coupon_code=coupon.code, lines=list(cart.lines))
                verdict = (await self._pricer.price(conn, trial, now)).coupon_verdict
                assert verdict is not None
                candidates.append(DiscountCandidate(coupon.code, coupon.description, verdict.applicable,
                                                    "; ".join(verdict.reasons)))
        if self._cache:
            await self._cache.discounts_read(cart.version, cart.token, candidates)
        return candidates

    async def check_auth(self, caller: Caller, token: str) -> AuthView:
        _check_token(token, "token")
        async with reading(self._uow) as uow:
            cart = await self._load(uow.conn, token)
        # a guest cart is nobody's until a login claims it: only the user it belongs to owns it
        owns = caller.authenticated and cart.user_id == caller.user_id
        return AuthView(caller.authenticated, caller.user_id, owns, cart.token)

    # -- changes -----------------------------------------------------------------------------------
    async def create_cart(self, caller: Caller, command: NewCart) -> CartView:
        problems: list[str] = []
        if len(command.items) > MAX_ITEMS_PER_REQUEST:
            problems.append(f"items: at most {MAX_ITEMS_PER_REQUEST}")
        for index, item in enumerate(command.items[:MAX_ITEMS_PER_REQUEST]):
            check_item_choice(problems, f"items[{index}]", item.plan_id, item.internship_id, item.period, item.quantity)
        check_currency(problems, "currency", command.currency)
        check_sale_slug(problems, "sale_slug", command.sale_slug)
        check_text(problems, "device_id", command.device_id, 255)
        check_analytics(problems, list(command.analytics_data))
        raise_if_any(problems)
        now = self._clock()
        async with self._uow() as uow:
            conn = uow.conn
            if command.sale_slug and await self._repo.get_sale(conn, command.sale_slug) is None:
                raise CheckoutError(ErrorCode.VALIDATION_FAILED, validation_messages=["sale_slug: no such sale"])
            cart = Cart.new(user_id=caller.user_id or None, currency=command.currency or "INR", now=now, ttl=self._ttl,
                            sale_slug=command.sale_slug or None, device_id=command.device_id or None,
                            analytics_data=list(command.analytics_data))
            known = await self._plans(conn, [item.plan_id for item in command.items if item.plan_id])
            for item in command.items:
                cart.add(await self._resolve(conn, item, known), item.quantity, now, self._ttl)
            view = await self._view(conn, cart)
            await self._repo.insert_cart(conn, cart, totals_of(view.prices))
            uow.publish(events.CREATED, cart.token, events.cart_event(cart, view.prices.total, now))
            uow.audit(actor=caller.user_id or "guest", entity_type="cart", entity_id=cart.token, action="created",
                      before=None, after={"status": cart.status, "user_id": cart.user_id, "items": len(cart.lines),
                                          "currency": cart.currency})
            await uow.commit()
        await self._committed(view)
        return view

    async def add_item(self, caller: Caller, token: str, item: ItemChoice) -> CartView:
        problems: list[str] = []
        check_uuid(problems, "token", token)
        check_item_choice(problems, "item", item.plan_id, item.internship_id, item.period, item.quantity)
        raise_if_any(problems)

        async def change(conn: AsyncConnection, cart: Cart, now: datetime.datetime) -> None:
            cart.add(await self._resolve(conn, item), item.quantity, now, self._ttl)

        return await self._change(caller, token, change)

    async def switch_plan(self, caller: Caller, token: str, plan_id: str, item_id: str) -> CartView:
        problems: list[str] = []
        check_uuid(problems, "token", token)
        check_uuid(problems, "plan_id", plan_id)
        check_uuid(problems, "item_id", item_id, required=False)
        raise_if_any(problems)

        async def change(conn: AsyncConnection, cart: Cart, now: datetime.datetime) -> None:
            cart.switch_plan(item_id or None, await self._resolve(conn, ItemChoice(plan_id=plan_id)), now, self._ttl)

        return await self._change(caller, token, change)

    async def remove_item(self, caller: Caller, token: str, item_id: str) -> CartView:
        problems: list[str] = []
        check_uuid(problems, "token", token)
        check_uuid(problems, "item_id", item_id)
        raise_if_any(problems)

        async def change(conn: AsyncConnection, cart: Cart, now: datetime.datetime) -> None:
            cart.remove(item_id, now, self._ttl)

        return await self._change(caller, token, change)

    async def apply_coupon(self, caller: Caller, token: str, code: str) -> CartView:
        problems: list[str] = []
        check_uuid(problems, "token", token)
        check_coupon_code(problems, "code", code)
        raise_if_any(problems)

        async def change(conn: AsyncConnection, cart: Cart, now: datetime.datetime) -> None:
            await self._attempts.refuse_if_locked_out(conn, cart.token, now)
            coupon = await self._repo.get_coupon(conn, code)
            if coupon is None:
                raise CheckoutError(ErrorCode.INVALID_COUPON, validation_messages=[f"code: {UNUSABLE_CODE}"])
            cart.set_coupon(code.upper(), now, self._ttl)
            verdict = (await self._pricer.price(conn, cart, now)).coupon_verdict
            if verdict is not None and not verdict.applicable:
                # a listed coupon is public: say why; an unlisted one answers as an unknown code would
                reasons = [f"code: {reason}" for reason in verdict.reasons] if coupon.listed else [f"code: {UNUSABLE_CODE}"]
                raise CheckoutError(ErrorCode.INVALID_COUPON, validation_messages=reasons)

        try:
            return await self._change(caller, token, change)
        except CheckoutError as refusal:
            if refusal.code is ErrorCode.INVALID_COUPON:
                await asyncio.shield(self._attempts.count_refusal(str(uuid.UUID(token)), self._clock()))
            raise

    async def remove_coupon(self, caller: Caller, token: str) -> CartView:
        _check_token(token, "token")

        async def change(conn: AsyncConnection, cart: Cart, now: datetime.datetime) -> None:
            cart.set_coupon(None, now, self._ttl)

        return await self._change(caller, token, change)

    async def login(self, caller: Caller, token: str) -> CartView:
        """The user claims a guest cart; an open cart they already had is merged into it."""
        _check_token(token, "token")
        if not caller.authenticated:
            raise CheckoutError(ErrorCode.NOT_AUTHENTICATED, "log in first: this call needs a bearer token")
        now = self._clock()
        closed: list[tuple[str, int]] = []
        async with self._uow() as uow:
            conn = uow.conn
            cart = await self._load(conn, token, for_update=True)
            access.ensure_may_touch(cart, caller)
            cart.ensure_open(now)
            before = {"user_id": cart.user_id, "items": len(cart.lines)}
            previous = await self._repo.open_cart_of_user(conn, caller.user_id, exclude=cart.token)
            cart.claim(caller.user_id, now, self._ttl)
            merged_from = None
            if previous is not None and previous.lines:
                previous_status = previous.status
                if previous.is_open(now):
                    await self._merge(conn, keep=cart, other=previous, now=now)
                previous.close_as_merged(now)
                prices = await self._pricer.price(conn, previous, now)
                await self._repo.save_cart(conn, previous, totals_of(prices))
                closed.append((previous.token, previous.version))
                merged_from = previous.token
                uow.audit(actor=caller.user_id, entity_type="cart", entity_id=previous.token, action="merged",
                          before={"status": previous_status},
                          after={"status": previous.status, "merged_into": cart.token})
            view = await self._view(conn, cart)
            await self._repo.save_cart(conn, cart, totals_of(view.prices))
            if before["user_id"] != cart.user_id or merged_from is not None:  # a login by its owner changes nothing
                uow.audit(actor=caller.user_id, entity_type="cart", entity_id=cart.token, action="claimed",
                          before=before, after={"user_id": cart.user_id, "items": len(cart.lines),
                                                "merged_from": merged_from})
            await uow.commit()
        await self._committed(view, closed)
        return view

    # -- helpers -------------------------------------------------------------------------------------
    async def _merge(self, conn: AsyncConnection, *, keep: Cart, other: Cart, now: datetime.datetime) -> None:
        """Lines combine (capped); of the two coupons, the valid one giving the larger discount stays."""
        keep.absorb(other, now, self._ttl)
        best_code, best_amount = None, None
        for code in {keep.coupon_code, other.coupon_code} - {None}:
            trial = dataclasses.replace(keep, coupon_code=code, lines=list(keep.lines))
            verdict = (await self._pricer.price(conn, trial, now)).coupon_verdict
            if verdict is not None and verdict.applicable and (best_amount is None or verdict.amount > best_amount):
                best_code, best_amount = code, verdict.amount
        keep.coupon_code = best_code

    async def _change(self, caller: Caller, token: str, change: Change) -> CartView:
        now = self._clock()
        async with self._uow() as uow:
            conn = uow.conn
            cart = await self._load(conn, token, for_update=True)
            access.ensure_may_touch(cart, caller)
            cart.ensure_open(now)
            await change(conn, cart, now)
            cart.refresh_plans(await self._repo.plans_by_id(conn, [line.plan.plan_id for line in cart.lines]))
            view = await self._view(conn, cart)
            await self._repo.save_cart(conn, cart, totals_of(view.prices))
            await uow.commit()
        await self._committed(view)
        return view

    async def _committed(self, view: CartView, closed: Sequence[tuple[str, int]] = ()) -> None:
        """After commit, the cache learns the new versions; shielded so a caller who hangs up cannot skip it."""
        if self._cache:
            await asyncio.shield(self._tell_cache(self._cache, view, closed))

    @staticmethod
    async def _tell_cache(cache: CartCache, view: CartView, closed: Sequence[tuple[str, int]]) -> None:
        await cache.cart_written(view)
        await cache.carts_closed(closed)

    async def _load(self, conn: AsyncConnection, token: str, *, for_update: bool = False) -> Cart:
        cart = await self._repo.get_cart(conn, token, for_update=for_update)
        if cart is None:
            raise CheckoutError(ErrorCode.CART_NOT_FOUND)
        return cart

    async def _view(self, conn: AsyncConnection, cart: Cart) -> CartView:
        now = self._clock()
        return CartView(cart, await self._pricer.price(conn, cart, now), now)

    async def _plans(self, conn: AsyncConnection, plan_ids: list[str]) -> dict[str, PlanRef]:
        """The plans of `plan_ids` that exist: from the catalog cache if it knows them all, else
        read. A cached plan can be stale only until the catalog's change event drops the cache
        (its TTL if that event is missed); a cart's prices are what it shows, and ConvertCart
        prices every line again from the plans in the database, so a stale one is never charged."""
        if self._catalog is None or not plan_ids:
            return await self._repo.plans_by_id(conn, plan_ids)
        every = await self._catalog.value("plans", lambda: self._repo.all_plans(conn))
        if all(plan_id in every for plan_id in plan_ids):
            return {plan_id: every[plan_id] for plan_id in plan_ids}
        return await self._repo.plans_by_id(conn, plan_ids)  # a plan newer than the cache's copy, or none such

    async def _resolve(self, conn: AsyncConnection, item: ItemChoice, known: dict[str, PlanRef] | None = None) -> PlanRef:
        """The plan `item` chooses; `known`: the plans of the request's plan ids, read at once."""
        if item.plan_id:
            plan = (known if known is not None else await self._repo.plans_by_id(conn, [item.plan_id])).get(item.plan_id)
            if plan is None:
                raise CheckoutError(ErrorCode.ITEM_NOT_FOUND, f"plan {item.plan_id} not found")
            return plan
        assert item.period is not None  # validation guarantees it
        plan = await self._repo.plan_for_period(conn, item.internship_id, *item.period)
        if plan is None:
            raise CheckoutError(ErrorCode.ITEM_NOT_FOUND,
                                f"internship {item.internship_id} has no {item.period[0]}-{item.period[1]} plan")
        return plan


def _check_token(token: str, field: str) -> None:
    problems: list[str] = []
    check_uuid(problems, field, token)
    raise_if_any(problems)


def _billing(choice: BillingChoice) -> Billing | None:
    if not choice.country:
        return None
    return Billing(choice.country, choice.state or None)

