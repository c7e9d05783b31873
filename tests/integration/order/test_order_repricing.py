"""What changed between cart and order decides the order (order_svc/place_order.py): the catalog's
price at order time, the sale as it stands then, and the coupon re-checked then. A coupon that no
longer holds refuses the order with 2004 and leaves everything as it was.

Each test prices a plan of its own (1000.00 INR) so that changing it touches no other test. No
billing is sent, so tax is IGST 18% of the amount after discounts.
"""

from __future__ import annotations

import dataclasses
import datetime
import uuid
from decimal import Decimal

import pytest
from sqlalchemy import func, insert, select, text

from checkout.v1 import cart_pb2, order_pb2
from common.tables import carts, coupon_redemptions, coupons, internships, orders, plans, sales
from tests.integration.test_order_grpc import emulator, fails_with, stubs  # noqa: F401 (fixtures)
from tests.support.tokens import bearer, new_user

OTHER_INTERNSHIP = "5b7f6a2e-1c1d-4c3a-9f55-0d0c1a000003"  # a sample internship no test cart here holds


@dataclasses.dataclass(frozen=True)
class Plan:
    internship_id: str
    plan_id: str


@pytest.fixture
async def plan(engine) -> Plan:
    made = Plan(str(uuid.uuid4()), str(uuid.uuid4()))
    async with engine.begin() as conn:
        await conn.execute(insert(internships).values(internship_id=made.internship_id, title="Repricing internship"))
        await conn.execute(insert(plans).values(plan_id=made.plan_id, internship_id=made.internship_id, period_value=1,
                                                period_unit="month", price=Decimal("1000.00"), currency="INR"))
    return made


async def execute(engine, statement: str, **params) -> None:
    async with engine.begin() as conn:
        await conn.execute(text(statement), params)


async def new_coupon(engine, percent: str = "10", **fields) -> str:
    code = f"RP{uuid.uuid4().hex[:10].upper()}"
    async with engine.begin() as conn:
        await conn.execute(insert(coupons).values(code=code, kind="percent", value=Decimal(percent), **fields))
    return code


async def new_sale(engine, plan: Plan, **window) -> str:
    slug = f"rp-{uuid.uuid4().hex[:10]}"
    async with engine.begin() as conn:
        await conn.execute(insert(sales).values(sale_slug=slug, kind="percent", value=Decimal("10"),
                                                internship_ids=[plan.internship_id], **window))
    return slug


async def a_cart(cart_stub, settings, user: str, plan: Plan, *, sale_slug: str = "", coupon: str = "") -> cart_pb2.Cart:
    cart = await cart_stub.CreateCart(cart_pb2.CreateCartRequest(items=[cart_pb2.CartItemInput(plan_id=plan.plan_id, quantity=1)],
                                                                 sale_slug=sale_slug), metadata=bearer(settings, user))
    if coupon:
        cart = await cart_stub.ApplyCoupon(cart_pb2.ApplyCouponRequest(token=cart.token, code=coupon), metadata=bearer(settings, user))
    return cart


async def place(order_stub, settings, user: str, cart_token: str) -> order_pb2.Order:
    return await order_stub.CreateOrder(order_pb2.CreateOrderRequest(cart_token=cart_token), metadata=bearer(settings, user))


def figures(message) -> tuple[str, str, str, str]:  # type: ignore[no-untyped-def]
    return message.subtotal, message.discount_amount, message.tax_amount, message.total


async def unit_prices(engine, order_token: str) -> list[str]:
    async with engine.connect() as conn:
        items = (await conn.execute(select(orders.c["items"]).where(orders.c.order_token == order_token))).scalar_one()
    return [item["unit_price"] for item in items]


# -- the price ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("new_price", "expected"), [
    ("1200.00", ("1200.00", "0.00", "216.00", "1416.00")),
    ("800.00", ("800.00", "0.00", "144.00", "944.00")),
])
async def test_the_order_carries_the_catalog_price_at_order_time(stubs, settings, engine, plan, new_price, expected):
    cart_stub, order_stub = stubs
    user = new_user()
    cart = await a_cart(cart_stub, settings, user, plan)
    assert figures(cart) == ("1000.00", "0.00", "180.00", "1180.00")
    await execute(engine, "UPDATE plans SET price = :price WHERE plan_id = :plan", price=Decimal(new_price), plan=plan.plan_id)

    order = await place(order_stub, settings, user, cart.token)

    assert figures(order) == expected
    assert order.payment.amount == expected[3]  # the gateway is asked for the new total too
    assert await unit_prices(engine, order.order_token) == [new_price]


# -- the sale -------------------------------------------------------------------------------------

LIST_PRICE = ("1000.00", "0.00", "180.00", "1180.00")
SALE_PRICE = ("900.00", "0.00", "162.00", "1062.00")
TOMORROW = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1)
SALE_CHANGES = {  # the sale's window when the cart is made, its change, the cart's figures, the order's
    "ended": ({}, "UPDATE sales SET ends_at = now() - interval '1 second' WHERE sale_slug = :slug", SALE_PRICE, LIST_PRICE),
    "started": ({"starts_at": TOMORROW}, "UPDATE sales SET starts_at = now() - interval '1 second' WHERE sale_slug = :slug",
                LIST_PRICE, SALE_PRICE),
}


@pytest.mark.parametrize("change", list(SALE_CHANGES))
async def test_the_order_applies_the_sale_as_it_stands_at_order_time(stubs, settings, engine, plan, change):
    cart_stub, order_stub = stubs
    user = new_user()
    window, statement, in_cart, in_order = SALE_CHANGES[change]
    slug = await new_sale(engine, plan, **window)
    cart = await a_cart(cart_stub, settings, user, plan, sale_slug=slug)
    assert figures(cart) == in_cart
    await execute(engine, statement, slug=slug)

    order = await place(order_stub, settings, user, cart.token)

    assert figures(order) == in_order
    assert await unit_prices(engine, order.order_token) == [in_order[0]]


# -- the coupon -----------------------------------------------------------------------------------

async def test_a_coupon_whose_value_changed_gives_its_value_at_order_time(stubs, settings, engine, plan):
    cart_stub, order_stub = stubs
    user = new_user()
    code = await new_coupon(engine, "10")
    cart = await a_cart(cart_stub, settings, user, plan, coupon=code)
    assert figures(cart) == ("1000.00", "100.00", "162.00", "1062.00")
    await execute(engine, "UPDATE coupons SET value = 25 WHERE code = :code", code=code)

    order = await place(order_stub, settings, user, cart.token)

    assert figures(order) == ("1000.00", "250.00", "135.00", "885.00") and order.discount_code == code


COUPON_CHANGES = {
    "expired": ("UPDATE coupons SET ends_at = now() - interval '1 second' WHERE code = :code",
                "code: coupon has expired"),
    "moved to the future": ("UPDATE coupons SET starts_at = now() + interval '1 day' WHERE code = :code",
                            "code: coupon is not valid yet"),
    "minimum raised": ("UPDATE coupons SET min_subtotal = 5000 WHERE code = :code",
                       "code: cart subtotal is below the coupon's minimum"),
    "narrowed to another internship": (f"UPDATE coupons SET internship_ids = ARRAY['{OTHER_INTERNSHIP}']::uuid[] WHERE code = :code",
                                       "code: coupon does not apply to any internship in the cart"),
    "deleted": ("DELETE FROM coupons WHERE code = :code", "code: no such coupon"),
}


async def nothing_changed(engine, cart: cart_pb2.Cart, code: str, redeemed_count: int | None, holders: list[str]) -> None:
    """No order from the cart, no other redemption of the code, its count as it was, the cart still open with its coupon."""
    async with engine.connect() as conn:
        placed = (await conn.execute(select(func.count()).select_from(orders).where(orders.c.cart_token == cart.token))).scalar()
        held_by = (await conn.execute(select(coupon_redemptions.c.user_id).where(coupon_redemptions.c.code == code))).scalars().all()
        count = (await conn.execute(select(coupons.c.redeemed_count).where(coupons.c.code == code))).scalar()
        stored = (await conn.execute(select(carts.c.status, carts.c.discount_code, carts.c.user_id)
                                     .where(carts.c.token == cart.token))).one()
    assert (placed, held_by, count) == (0, holders, redeemed_count)
    assert (stored.status, stored.discount_code, stored.user_id) == ("active", code, cart.user_id)


@pytest.mark.parametrize("change", list(COUPON_CHANGES))
async def test_a_coupon_that_no_longer_holds_refuses_the_order_with_2004_and_changes_nothing(stubs, settings, engine, plan, change):
    cart_stub, order_stub = stubs
    user = new_user()
    code = await new_coupon(engine)
    cart = await a_cart(cart_stub, settings, user, plan, coupon=code)
    assert cart.discount_amount == "100.00"
    statement, reason = COUPON_CHANGES[change]
    await execute(engine, statement, code=code)

    detail = await fails_with(place(order_stub, settings, user, cart.token), 2004)

    assert list(detail.validation_messages) == [reason]
    await nothing_changed(engine, cart, code, None if change == "deleted" else 0, holders=[])


async def test_the_last_redemption_taken_by_another_students_order_refuses_this_one(stubs, settings, engine, plan):
    cart_stub, order_stub = stubs
    late, early = new_user(), new_user()
    code = await new_coupon(engine, max_redemptions=1)
    late_cart = await a_cart(cart_stub, settings, late, plan, coupon=code)
    early_cart = await a_cart(cart_stub, settings, early, plan, coupon=code)
    assert late_cart.discount_amount == early_cart.discount_amount == "100.00"  # both carts took it while it was free
    first = await place(order_stub, settings, early, early_cart.token)
    assert first.discount_amount == "100.00"

    detail = await fails_with(place(order_stub, settings, late, late_cart.token), 2004)

    assert list(detail.validation_messages) == ["code: coupon redemption limit reached"]
    await nothing_changed(engine, late_cart, code, 1, holders=[early])
