"""The cart aggregate: its lines, its status and the rules a change must respect.

A cart is open (draft: no lines, active: has lines) until it expires CART_TTL after its last change
or is converted into an order. Prices here are INR list prices copied from the catalog each time
the cart changes; what the student pays is worked out by pricing.py (and again, from the catalog,
when the order is placed).
"""

from __future__ import annotations

import dataclasses
import datetime
import uuid
from decimal import Decimal

from common.errors import CheckoutError, ErrorCode

MAX_QUANTITY = 10
MAX_LINES = 20

OPEN_STATUSES = ("draft", "active")


@dataclasses.dataclass(frozen=True)
class PlanRef:
    """What a cart needs to know about a catalog plan."""

    plan_id: str
    internship_id: str
    title: str
    period_value: int
    period_unit: str
    list_price: Decimal  # INR, tax-exclusive


@dataclasses.dataclass
class CartLine:
    item_id: str
    plan: PlanRef
    quantity: int


@dataclasses.dataclass
class Cart:
    token: str
    user_id: str | None
    status: str
    lines: list[CartLine]
    currency: str
    expires_at: datetime.datetime
    created_at: datetime.datetime
    updated_at: datetime.datetime
    sale_slug: str | None = None
    coupon_code: str | None = None
    device_id: str | None = None
    analytics_data: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    version: int = 1
    order_token: str | None = None  # the order that converted it (status converted)

    @classmethod
    def new(cls, *, user_id: str | None, currency: str, now: datetime.datetime, ttl: datetime.timedelta,
            sale_slug: str | None = None, device_id: str | None = None,
            analytics_data: list[tuple[str, str]] | None = None) -> Cart:
        return cls(token=str(uuid.uuid4()), user_id=user_id, status="draft", lines=[], currency=currency,
                   expires_at=now + ttl, created_at=now, updated_at=now, sale_slug=sale_slug,
                   device_id=device_id, analytics_data=list(analytics_data or []))

    # -- reading ---------------------------------------------------------------------------------
    def is_open(self, now: datetime.datetime) -> bool:
        return self.status in OPEN_STATUSES and now < self.expires_at

    def ensure_open(self, now: datetime.datetime) -> None:
        if self.status == "converted":
            raise CheckoutError(ErrorCode.CART_CONVERTED)
        if self.status == "expired" or now >= self.expires_at:
            raise CheckoutError(ErrorCode.CART_EXPIRED)

    def line(self, item_id: str) -> CartLine:
        for line in self.lines:
            if line.item_id == item_id:
                return line
        raise CheckoutError(ErrorCode.ITEM_NOT_FOUND, f"no item {item_id} in this cart", suggested_action="read the cart for its item ids")

    # -- changing (each call is one change: it renews the expiry) ---------------------------------
    def add(self, plan: PlanRef, quantity: int, now: datetime.datetime, ttl: datetime.timedelta) -> None:
        self.ensure_open(now)
        _check_quantity(quantity)
        for line in self.lines:
            if line.plan.plan_id == plan.plan_id:
                _check_quantity(line.quantity + quantity, combined=True)
                line.quantity += quantity
                line.plan = plan
                self._touch(now, ttl)
                return
        if len(self.lines) >= MAX_LINES:
            raise CheckoutError(ErrorCode.VALIDATION_FAILED, validation_messages=[f"a cart holds at most {MAX_LINES} lines"])
        self.lines.append(CartLine(item_id=str(uuid.uuid4()), plan=plan, quantity=quantity))
        self._touch(now, ttl)

    def switch_plan(self, item_id: str | None, plan: PlanRef, now: datetime.datetime, ttl: datetime.timedelta) -> None:
        self.ensure_open(now)
        if not item_id:
            if len(self.lines) != 1:
                raise CheckoutError(ErrorCode.VALIDATION_FAILED, validation_messages=["item_id: required when the cart does not hold exactly one item"])
            item_id = self.lines[0].item_id
        line = self.line(item_id)
        if line.plan.internship_id != plan.internship_id:
            raise CheckoutError(ErrorCode.VALIDATION_FAILED, validation_messages=["plan_id: must be a plan of the same internship as the item"])
        if any(other.plan.plan_id == plan.plan_id for other in self.lines if other is not line):
            raise CheckoutError(ErrorCode.VALIDATION_FAILED, validation_messages=["plan_id: the cart already holds this plan"])
        line.plan = plan
        self._touch(now, ttl)

    def remove(self, item_id: str, now: datetime.datetime, ttl: datetime.timedelta) -> None:
        self.ensure_open(now)
        self.lines.remove(self.line(item_id))
        self._touch(now, ttl)

    def set_coupon(self, code: str | None, now: datetime.datetime, ttl: datetime.timedelta) -> None:
        self.ensure_open(now)
        self.coupon_code = code
        self._touch(now, ttl)

    def refresh_plans(self, plans: dict[str, PlanRef]) -> None:
        """Copy current catalog prices and titles into the lines (a plan gone from the catalog stays as it was)."""
        for line in self.lines:
            line.plan = plans.get(line.plan.plan_id, line.plan)

    def claim(self, user_id: str, now: datetime.datetime, ttl: datetime.timedelta) -> None:
        self.ensure_open(now)
        if self.user_id and self.user_id != user_id:
            raise CheckoutError(ErrorCode.NOT_ALLOWED, "this cart belongs to another user")
        self.user_id = user_id
        self._touch(now, ttl)

    def absorb(self, guest: Cart, now: datetime.datetime, ttl: datetime.timedelta) -> None:
        """Merge a guest cart into this (the user's) cart: same plans combine, quantities capped."""
        self.ensure_open(now)
        for theirs in guest.lines:
            mine = next((line for line in self.lines if line.plan.plan_id == theirs.plan.plan_id), None)
            if mine is not None:
                mine.quantity = min(MAX_QUANTITY, mine.quantity + theirs.quantity)
            elif len(self.lines) < MAX_LINES:
                self.lines.append(CartLine(item_id=str(uuid.uuid4()), plan=theirs.plan, quantity=theirs.quantity))
        self.device_id = self.device_id or guest.device_id
        self.sale_slug = self.sale_slug or guest.sale_slug
        self.analytics_data = [*self.analytics_data, *guest.analytics_data]
        self._touch(now, ttl)

    def close_as_merged(self, now: datetime.datetime) -> None:
        """The guest side of a merge: it lives on in the user's cart, so it is no longer open."""
        self.status = "expired"
        self.expires_at = min(self.expires_at, now)
        self.updated_at = now

    def convert(self, order_token: str, user_id: str, now: datetime.datetime) -> None:
        """The cart becomes the order `order_token` of `user_id` (its owner from now on)."""
        self.ensure_open(now)
        if not self.lines:
            raise CheckoutError(ErrorCode.CART_EMPTY)
        if self.user_id is not None and self.user_id != user_id:
            raise CheckoutError(ErrorCode.NOT_ALLOWED, "this cart belongs to another user")
        self.status = "converted"
        self.user_id = user_id
        self.order_token = order_token
        self.updated_at = now

    def reopen(self, now: datetime.datetime, ttl: datetime.timedelta) -> None:
        """The order it was converted for never came to be: the cart is open again, for a full TTL."""
        if self.status != "converted":
            raise ValueError(f"only a converted cart can be reopened, not a {self.status} one")
        self.order_token = None
        self._touch(now, ttl)

    def expire_if_due(self, now: datetime.datetime) -> bool:
        if self.status in OPEN_STATUSES and now >= self.expires_at:
            self.status = "expired"
            return True
        return False

    def _touch(self, now: datetime.datetime, ttl: datetime.timedelta) -> None:
        self.status = "active" if self.lines else "draft"
        self.updated_at = now
        self.expires_at = now + ttl


def _check_quantity(quantity: int, *, combined: bool = False) -> None:
    if not 1 <= quantity <= MAX_QUANTITY:
        what = "the combined quantity of this plan" if combined else "quantity"
        raise CheckoutError(ErrorCode.VALIDATION_FAILED, validation_messages=[f"quantity: {what} must be between 1 and {MAX_QUANTITY}"])
