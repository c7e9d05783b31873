"""An in-memory stand-in for cart_svc.repository.Repository, for service-layer tests with
tests/support/fake_uow.py: the methods ConvertCart and ReleaseCart use, over plain dicts.

Changes are applied at once (no transactions): a test checks what a refused use case left behind
by the fake unit of work (no events, no audit rows, not committed) and by these dicts staying as
they were, because every refusal is raised before the first write.
"""

from __future__ import annotations

import copy
import dataclasses
import uuid
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from cart_svc.domain.cart import Cart, PlanRef
from cart_svc.domain.conversion import ConvertedCart
from cart_svc.domain.coupons import Coupon
from cart_svc.domain.sales import Sale
from cart_svc.repository import CartTotals, Conversion, HoldRefused, Redemption, Released


@dataclasses.dataclass
class HeldRow:
    redemption_id: str
    code: str
    user_id: str
    status: str


class MemoryRepository:
    def __init__(self) -> None:
        self.carts: dict[str, Cart] = {}
        self.totals: dict[str, CartTotals] = {}
        self.plans: dict[str, PlanRef] = {}
        self.rates: dict[str, Decimal] = {"INR": Decimal(1)}
        self.sales: dict[str, Sale] = {}
        self.coupons: dict[str, Coupon] = {}
        self.redemptions: dict[str, HeldRow] = {}  # by order token
        self.conversions: dict[str, Conversion] = {}  # by order token
        self.writes = 0

    # -- carts -------------------------------------------------------------------------------------
    async def get_cart(self, conn: Any, token: str, *, for_update: bool = False) -> Cart | None:
        cart = self.carts.get(token)
        return None if cart is None else copy.deepcopy(cart)  # the caller changes its own copy, as with SQL

    async def save_cart(self, conn: Any, cart: Cart, totals: CartTotals) -> None:
        cart.version += 1
        self.carts[cart.token] = copy.deepcopy(cart)
        self.totals[cart.token] = totals
        self.writes += 1

    # -- catalog, coupons, sales ----------------------------------------------------------------------
    async def plans_by_id(self, conn: Any, plan_ids: Iterable[str]) -> dict[str, PlanRef]:
        return {plan_id: self.plans[plan_id] for plan_id in plan_ids if plan_id in self.plans}

    async def exchange_rate(self, conn: Any, currency: str) -> Decimal | None:
        return self.rates.get(currency)

    async def get_sale(self, conn: Any, slug: str) -> Sale | None:
        return self.sales.get(slug)

    async def get_coupon(self, conn: Any, code: str) -> Coupon | None:
        return self.coupons.get(code.upper())

    async def user_redemptions(self, conn: Any, code: str, user_id: str | None) -> int:
        return sum(1 for row in self.redemptions.values()
                   if row.code == code.upper() and row.user_id == user_id and row.status == "held")

    # -- the ledger ------------------------------------------------------------------------------------
    async def lock_coupon(self, conn: Any, code: str) -> Coupon | None:
        return self.coupons.get(code)

    async def redemption_of(self, conn: Any, order_token: str) -> Redemption | None:
        row = self.redemptions.get(order_token)
        return None if row is None else Redemption(row.code, row.user_id, row.status)

    async def hold_redemption(self, conn: Any, *, code: str, user_id: str, order_token: str) -> tuple[str, int]:
        if order_token in self.redemptions:
            raise HoldRefused("order_taken")
        coupon = self.coupons[code]
        if coupon.max_redemptions and coupon.redeemed_count >= coupon.max_redemptions:
            raise HoldRefused("limit_reached")
        redemption_id = str(uuid.uuid4())
        self.redemptions[order_token] = HeldRow(redemption_id, code, user_id, "held")
        self.coupons[code] = dataclasses.replace(coupon, redeemed_count=coupon.redeemed_count + 1)
        self.writes += 1
        return redemption_id, coupon.redeemed_count + 1

    async def release_redemption(self, conn: Any, order_token: str) -> Released | None:
        row = self.redemptions.get(order_token)
        if row is None or row.status != "held":
            return None
        row.status = "released"
        coupon = self.coupons[row.code]
        self.coupons[row.code] = dataclasses.replace(coupon, redeemed_count=coupon.redeemed_count - 1)
        self.writes += 1
        return Released(row.code, row.user_id, coupon.redeemed_count - 1)

    # -- conversions -----------------------------------------------------------------------------------
    async def conversion(self, conn: Any, order_token: str, *, for_update: bool = False) -> Conversion | None:
        return self.conversions.get(order_token)

    async def lock_cart_for_conversion(self, conn: Any, token: str, order_token: str,
                                       ) -> tuple[Cart | None, Conversion | None, dict[str, PlanRef]]:
        cart = await self.get_cart(conn, token, for_update=True)
        plans = {} if cart is None else await self.plans_by_id(conn, [line.plan.plan_id for line in cart.lines])
        return cart, await self.conversion(conn, order_token), plans

    async def converted_of_cart(self, conn: Any, cart_token: str) -> Conversion | None:
        return next((c for c in self.conversions.values() if c.cart_token == cart_token and c.status == "converted"),
                    None)

    async def insert_conversion(self, conn: Any, snapshot: ConvertedCart) -> bool:
        if snapshot.order_token in self.conversions:
            return False
        self.conversions[snapshot.order_token] = Conversion(snapshot.order_token, snapshot.cart_token,
                                                            snapshot.user_id, "converted", snapshot)
        self.writes += 1
        return True

    async def save_and_insert_conversion(self, conn: Any, cart: Cart, totals: CartTotals,
                                         snapshot: ConvertedCart) -> bool:
        await self.save_cart(conn, cart, totals)
        return await self.insert_conversion(conn, snapshot)

    async def release_conversion(self, conn: Any, order_token: str) -> bool:
        found = self.conversions.get(order_token)
        if found is None or found.status != "converted":
            return False
        self.conversions[order_token] = dataclasses.replace(found, status="released")
        self.writes += 1
        return True
