"""checkout.internal.v1.CartCheckout over real gRPC against real PostgreSQL: ConvertCart converts
once per order token and once per cart, holds coupon limits under concurrency, re-prices from the
catalog as it stands at conversion, refuses without changing anything; ReleaseCart gives the coupon
hold and the cart back, once."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from cart_svc.app import registration
from cart_svc.domain.coupons import UNUSABLE_CODE
from cart_svc.tables import (
    audit_log,
    cart_conversions,
    carts,
    coupon_redemptions,
    coupons,
    internships,
    outbox,
    plans,
    sales,
)
from checkout.internal.v1 import cart_checkout_pb2, cart_checkout_pb2_grpc
from checkout.v1 import cart_pb2, cart_pb2_grpc, common_pb2
from common.db import create_engine
from common.settings import Settings
from tests.integration.cart.test_cart_grpc import BACKEND, BACKEND_1M, DESIGN_1M, fails_with
from tests.support.grpc_servers import serving
from tests.support.round_trips import round_trips
from tests.support.tokens import bearer, new_user

OTHER_INTERNSHIP = "5b7f6a2e-1c1d-4c3a-9f55-0d0c1a000003"  # a sample internship no test cart here holds


@dataclasses.dataclass(frozen=True)
class Stubs:
    carts: cart_pb2_grpc.CartServiceStub
    checkout: cart_checkout_pb2_grpc.CartCheckoutStub


@pytest.fixture(scope="module")
async def wide_engine(settings: Settings, cart_engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    # `cart_engine` first: it loads the catalog; this one has room for 20+ conversions at once
    engine = create_engine(settings, "cart", pool_size=25)
    yield engine
    await engine.dispose()


@pytest.fixture
async def stubs(settings: Settings, wide_engine: AsyncEngine) -> AsyncIterator[Stubs]:
    async with serving(settings, registration(wide_engine, settings)) as channel:
        yield Stubs(cart_pb2_grpc.CartServiceStub(channel), cart_checkout_pb2_grpc.CartCheckoutStub(channel))


async def a_cart(stubs: Stubs, settings: Settings, user: str | None, *, plan_id: str = BACKEND_1M, quantity: int = 1,
                 coupon: str = "", sale_slug: str = "", currency: str = "") -> cart_pb2.Cart:
    metadata = bearer(settings, user) if user else None
    cart = await stubs.carts.CreateCart(cart_pb2.CreateCartRequest(
        items=[cart_pb2.CartItemInput(plan_id=plan_id, quantity=quantity)], sale_slug=sale_slug,
        currency=currency), metadata=metadata)
    if coupon:
        cart = await stubs.carts.ApplyCoupon(cart_pb2.ApplyCouponRequest(token=cart.token, code=coupon),
                                             metadata=metadata)
    return cart


def convert_request(cart_token: str, user: str, order: str | None = None, country: str = "",
                    state: str = "") -> cart_checkout_pb2.ConvertCartRequest:
    return cart_checkout_pb2.ConvertCartRequest(cart_token=cart_token, order_token=order or str(uuid.uuid4()),
                                                user_id=user, billing=common_pb2.Billing(country=country, state=state))


async def new_coupon(engine: AsyncEngine, percent: str = "10", **fields: Any) -> str:
    code = f"CV{uuid.uuid4().hex[:10].upper()}"
    async with engine.begin() as conn:
        await conn.execute(insert(coupons).values(code=code, kind="percent", value=Decimal(percent), **fields))
    return code


async def execute(engine: AsyncEngine, statement: str, **params: Any) -> None:
    async with engine.begin() as conn:
        await conn.execute(text(statement), params)


async def count(engine: AsyncEngine, table: Any, *where: Any) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(table).where(*where))).scalar_one()


async def cart_row(engine: AsyncEngine, token: str) -> Any:
    async with engine.connect() as conn:
        return (await conn.execute(select(carts).where(carts.c.token == token))).one()


async def ledger(engine: AsyncEngine, code: str) -> tuple[int | None, list[str]]:
    """The coupon's redeemed_count and the order tokens holding it."""
    async with engine.connect() as conn:
        redeemed = (await conn.execute(select(coupons.c.redeemed_count).where(coupons.c.code == code))).scalar()
        held = (await conn.execute(select(coupon_redemptions.c.order_token).where(
            coupon_redemptions.c.code == code, coupon_redemptions.c.status == "held"))).scalars().all()
    return redeemed, sorted(held)


async def cart_events(engine: AsyncEngine, token: str) -> list[tuple[str, dict[str, Any]]]:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(outbox.c.subject, outbox.c.payload)
                                   .where(outbox.c.aggregate_id == token).order_by(outbox.c.seq))).all()
    return [(row.subject, row.payload) for row in rows]


def figures(message: Any) -> tuple[str, str, str, str]:
    return message.subtotal, message.discount_amount, message.tax_amount, message.total


# -- ConvertCart: the answer and what it changes ------------------------------------------------------
async def test_convert_answers_the_priced_snapshot_and_converts_the_cart(stubs, settings, cart_engine):
    user = new_user()
    code = await new_coupon(cart_engine)
    cart = await a_cart(stubs, settings, None, quantity=2, coupon=code)  # a guest cart: the order's user takes it
    await stubs.carts.AddItem(cart_pb2.AddItemRequest(token=cart.token, plan_id=DESIGN_1M, quantity=1))
    order = str(uuid.uuid4())

    converted = await stubs.checkout.ConvertCart(convert_request(cart.token, user, order, "IN", "KA"))

    # 1499 x 2 + 999 = 3997.00; 10% = 399.70; taxable 3597.30; CGST/SGST 9% = 323.757 → 323.76 each
    assert (converted.order_token, converted.cart_token, converted.user_id) == (order, cart.token, user)
    assert (converted.currency, converted.exchange_rate) == ("INR", "1")
    assert [(line.line_no, line.plan_id, line.internship_id, line.quantity, line.unit_price, line.unit_price_inr,
             line.line_total, line.period.value, line.period.unit) for line in converted.lines] == [
        (1, BACKEND_1M, BACKEND, 2, "1499.00", "1499.00", "2998.00", 1, "month"),
        (2, DESIGN_1M, OTHER_INTERNSHIP, 1, "999.00", "999.00", "999.00", 1, "month")]
    assert converted.lines[0].title == "Backend Engineering with Python"
    assert figures(converted) == ("3997.00", "399.70", "647.52", "4244.82")
    assert converted.discount_code == code
    assert [(t.name, t.rate, t.amount) for t in converted.taxes] == [("CGST", "9", "323.76"), ("SGST", "9", "323.76")]
    assert (converted.billing.country, converted.billing.state) == ("IN", "KA") and converted.converted_at.endswith("Z")

    stored = await cart_row(cart_engine, cart.token)
    assert (stored.status, stored.user_id, stored.order_token, stored.version) == ("converted", user, order, 4)
    assert await ledger(cart_engine, code) == (1, [order])
    [event] = [payload for subject, payload in await cart_events(cart_engine, cart.token)
               if subject == "checkout.cart.converted"]
    assert (event["order_token"], event["status"], event["user_id"], event["total"]) == (
        order, "converted", user, "4244.82")
    assert [(i["plan_id"], i["quantity"]) for i in event["items"]] == [(BACKEND_1M, 2), (DESIGN_1M, 1)]
    async with cart_engine.connect() as conn:
        actions = (await conn.execute(select(audit_log.c.entity_type, audit_log.c.action).where(
            audit_log.c.entity_id.in_((cart.token, code))).order_by(audit_log.c.id))).all()
    assert [tuple(a) for a in actions] == [("cart", "created"), ("coupon", "redeem"), ("cart", "converted")]
    await fails_with(stubs.carts.AddItem(cart_pb2.AddItemRequest(token=cart.token, plan_id=BACKEND_1M, quantity=1),
                                         metadata=bearer(settings, user)), 1003)


async def test_a_repeat_with_the_same_order_token_answers_the_same_and_changes_nothing(stubs, settings, cart_engine):
    user = new_user()
    code = await new_coupon(cart_engine)
    cart = await a_cart(stubs, settings, user, coupon=code)
    order = str(uuid.uuid4())
    first = await stubs.checkout.ConvertCart(convert_request(cart.token, user, order))
    before = (await cart_row(cart_engine, cart.token), await ledger(cart_engine, code),
              await cart_events(cart_engine, cart.token), await count(cart_engine, audit_log))
    await execute(cart_engine, "UPDATE plans SET price = price WHERE plan_id = :plan", plan=BACKEND_1M)

    again = await stubs.checkout.ConvertCart(convert_request(cart.token.upper(), user, order.upper(), "US"))

    assert again == first  # even with other billing: the order's snapshot is what it was
    after = (await cart_row(cart_engine, cart.token), await ledger(cart_engine, code),
             await cart_events(cart_engine, cart.token), await count(cart_engine, audit_log))
    assert after == before


async def test_a_double_submit_with_another_order_token_answers_the_first_order(stubs, settings, cart_engine):
    user = new_user()
    code = await new_coupon(cart_engine)
    cart = await a_cart(stubs, settings, user, coupon=code)
    first = await stubs.checkout.ConvertCart(convert_request(cart.token, user))

    second = await stubs.checkout.ConvertCart(convert_request(cart.token, user))

    assert second == first
    assert await ledger(cart_engine, code) == (1, [first.order_token])
    assert await count(cart_engine, cart_conversions, cart_conversions.c.cart_token == cart.token) == 1
    await fails_with(stubs.checkout.ConvertCart(convert_request(cart.token, new_user())), 1102)


async def test_concurrent_conversions_of_one_cart_make_one(stubs, settings, cart_engine):
    user = new_user()
    code = await new_coupon(cart_engine)
    cart = await a_cart(stubs, settings, user, coupon=code)

    answers = await asyncio.gather(*(stubs.checkout.ConvertCart(convert_request(cart.token, user)) for _ in range(8)))

    assert len({answer.SerializeToString() for answer in answers}) == 1
    assert await count(cart_engine, cart_conversions, cart_conversions.c.cart_token == cart.token) == 1
    assert await ledger(cart_engine, code) == (1, [answers[0].order_token])
    assert [s for s, _ in await cart_events(cart_engine, cart.token)].count("checkout.cart.converted") == 1


async def test_convert_reads_the_cart_locked_its_conversion_and_plans_in_one_statement(stubs, settings, wide_engine):
    user = new_user()
    cart = await a_cart(stubs, settings, user)
    with round_trips(wide_engine) as trips:
        await stubs.checkout.ConvertCart(convert_request(cart.token, user))
    assert trips == ["BEGIN", "WITH carts", "WITH carts", "WITH -"]  # read; saved and converted; event, audit + COMMIT


@contextlib.asynccontextmanager
async def cart_locked(engine: AsyncEngine, token: str) -> AsyncIterator[Any]:
    """A transaction that holds the cart's row lock (as another ConvertCart or a ReleaseCart does);
    what it changes is committed when the block ends."""
    async with engine.begin() as conn:
        await conn.execute(select(carts.c.token).where(carts.c.token == token).with_for_update())
        yield conn


async def waiting_for_the_lock(engine: AsyncEngine) -> None:
    """Until a statement of the cart's role waits for a row lock (ConvertCart's read, blocked)."""
    for _ in range(200):
        async with engine.connect() as conn:
            if (await conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                        "AND query LIKE 'WITH locked AS%'"))).scalar():
                return
        await asyncio.sleep(0.02)
    raise AssertionError("ConvertCart never waited for the cart's lock")


async def test_a_repeat_that_waited_for_the_lock_while_the_order_was_released_is_refused(stubs, settings,
                                                                                       cart_engine):
    """ConvertCart's read sees the conversion as it was before the lock it waited for: a repeat
    reads it again under the lock, and a release that came between is what it finds."""
    user = new_user()
    cart = await a_cart(stubs, settings, user)
    order = str(uuid.uuid4())
    await stubs.checkout.ConvertCart(convert_request(cart.token, user, order))
    async with cart_locked(cart_engine, cart.token) as conn:
        repeat = asyncio.ensure_future(stubs.checkout.ConvertCart(convert_request(cart.token, user, order)))
        await waiting_for_the_lock(cart_engine)
        await conn.execute(update(cart_conversions).where(cart_conversions.c.order_token == order)
                           .values(status="released", released_at=func.now()))  # ReleaseCart, reopening
        await conn.execute(update(carts).where(carts.c.token == cart.token)
                           .values(status="active", order_token=None, version=carts.c.version + 1))

    detail = await fails_with(repeat, 1000)
    assert "released" in detail.validation_messages[0]


async def test_a_plan_added_while_the_conversion_waited_for_the_lock_is_priced_from_the_catalog(
        stubs, settings, cart_engine):
    """A line whose plan is newer than the read's snapshot: the plans are read again under the lock."""
    user = new_user()
    cart = await a_cart(stubs, settings, user)
    newer = Plan(str(uuid.uuid4()), str(uuid.uuid4()))
    async with cart_locked(cart_engine, cart.token) as conn:
        converting = asyncio.ensure_future(stubs.checkout.ConvertCart(convert_request(cart.token, user)))
        await waiting_for_the_lock(cart_engine)
        await conn.execute(insert(internships).values(internship_id=newer.internship_id, title="Newer internship"))
        await conn.execute(insert(plans).values(plan_id=newer.plan_id, internship_id=newer.internship_id,
                                                period_value=1, period_unit="month", price=Decimal("1500.00"),
                                                currency="INR"))
        await conn.execute(text(  # the student added it meanwhile, at a price since changed
            "UPDATE carts SET items = items || jsonb_build_array(jsonb_build_object('item_id', CAST(:item AS text), "
            "'plan_id', CAST(:plan AS text), 'internship_id', CAST(:internship AS text), 'title', 'Newer internship', 'period_value', 1, "
            "'period_unit', 'month', 'list_price', '900.00', 'quantity', 1)), version = version + 1 "
            "WHERE token = :token"), {"item": str(uuid.uuid4()), "plan": newer.plan_id,
                                      "internship": newer.internship_id, "token": cart.token})

    converted = await converting
    assert len(converted.lines) == 2
    assert [line.unit_price for line in converted.lines if line.plan_id == newer.plan_id] == ["1500.00"]


@pytest.mark.slow
async def test_20_concurrent_conversions_on_a_coupon_limited_to_3_redeem_exactly_3(stubs, settings, cart_engine):
    code = await new_coupon(cart_engine, max_redemptions=3)
    users = [new_user() for _ in range(20)]
    cart_list = [await a_cart(stubs, settings, user, coupon=code) for user in users]  # all took it while free

    results = await asyncio.gather(*(stubs.checkout.ConvertCart(convert_request(cart.token, user))
                                     for cart, user in zip(cart_list, users, strict=True)), return_exceptions=True)

    converted = [r for r in results if isinstance(r, cart_checkout_pb2.ConvertedCart)]
    assert len(converted) == 3 and all(r.discount_code == code for r in converted)
    for failure in (r for r in results if not isinstance(r, cart_checkout_pb2.ConvertedCart)):
        detail = await fails_with(_raise(failure), 2004)
        assert list(detail.validation_messages) == ["code: coupon redemption limit reached"]
    assert await ledger(cart_engine, code) == (3, sorted(r.order_token for r in converted))
    statuses = [(await cart_row(cart_engine, cart.token)).status for cart in cart_list]
    assert sorted(statuses) == ["active"] * 17 + ["converted"] * 3


async def _raise(error: BaseException) -> None:
    raise error


# -- ConvertCart: refusals ------------------------------------------------------------------------------
async def nothing_changed(engine: AsyncEngine, cart: cart_pb2.Cart, code: str | None, redeemed: int | None,
                          holders: list[str]) -> None:
    """No conversion of the cart, the coupon as it was, the cart still open as it was, no event but its creation."""
    stored = await cart_row(engine, cart.token)
    assert await count(engine, cart_conversions, cart_conversions.c.cart_token == cart.token) == 0
    assert (stored.status, stored.discount_code, stored.user_id, stored.order_token) == (
        cart.status, cart.discount_code or None, cart.user_id or None, None)
    assert [s for s, _ in await cart_events(engine, cart.token)] == ["checkout.cart.created"]
    if code is not None:
        assert await ledger(engine, code) == (redeemed, holders)


async def test_refusals_change_nothing(stubs, settings, cart_engine):
    user = new_user()
    code = await new_coupon(cart_engine)
    cart = await a_cart(stubs, settings, user, coupon=code)
    versions = (await cart_row(cart_engine, cart.token)).version
    detail = await fails_with(stubs.checkout.ConvertCart(cart_checkout_pb2.ConvertCartRequest(
        cart_token="nope", order_token="", user_id="x", billing=common_pb2.Billing(country="IN", state="ZZ"))), 1000)
    assert {m.split(":")[0] for m in detail.validation_messages} == {"cart_token", "order_token", "user_id",
                                                                    "billing.state"}
    await fails_with(stubs.checkout.ConvertCart(convert_request(cart.token, user, country="IN", state="ZZ")), 1000)
    await fails_with(stubs.checkout.ConvertCart(convert_request(str(uuid.uuid4()), user)), 1001)
    await fails_with(stubs.checkout.ConvertCart(convert_request(cart.token, new_user())), 1102)
    await nothing_changed(cart_engine, cart, code, 0, [])
    assert (await cart_row(cart_engine, cart.token)).version == versions

    empty = await stubs.carts.CreateCart(cart_pb2.CreateCartRequest(), metadata=bearer(settings, user))
    await fails_with(stubs.checkout.ConvertCart(convert_request(empty.token, user)), 1004)
    await nothing_changed(cart_engine, empty, None, None, [])

    expired = await a_cart(stubs, settings, user, coupon=code)
    async with cart_engine.begin() as conn:
        await conn.execute(update(carts).where(carts.c.token == expired.token).values(expires_at=carts.c.created_at))
    await fails_with(stubs.checkout.ConvertCart(convert_request(expired.token, user)), 1002)
    await nothing_changed(cart_engine, expired, code, 0, [])

    legacy = await a_cart(stubs, settings, None)  # converted before conversions were kept: no snapshot to answer
    async with cart_engine.begin() as conn:
        await conn.execute(update(carts).where(carts.c.token == legacy.token).values(status="converted"))
    await fails_with(stubs.checkout.ConvertCart(convert_request(legacy.token, user)), 1003)


# -- ConvertCart re-prices: what changed between the cart and the conversion decides ---------------------
# Each test prices a plan of its own (1000.00 INR) so that changing it touches no other test. No
# billing is sent, so tax is IGST 18% of the amount after discounts.
@dataclasses.dataclass(frozen=True)
class Plan:
    internship_id: str
    plan_id: str


@pytest.fixture
async def plan(cart_engine: AsyncEngine) -> Plan:
    made = Plan(str(uuid.uuid4()), str(uuid.uuid4()))
    async with cart_engine.begin() as conn:
        await conn.execute(insert(internships).values(internship_id=made.internship_id, title="Repricing internship"))
        await conn.execute(insert(plans).values(plan_id=made.plan_id, internship_id=made.internship_id,
                                                period_value=1, period_unit="month", price=Decimal("1000.00"),
                                                currency="INR"))
    return made


async def new_sale(engine: AsyncEngine, plan: Plan, **window: Any) -> str:
    slug = f"rp-{uuid.uuid4().hex[:10]}"
    async with engine.begin() as conn:
        await conn.execute(insert(sales).values(sale_slug=slug, kind="percent", value=Decimal("10"),
                                                internship_ids=[plan.internship_id], **window))
    return slug


@pytest.mark.parametrize(("new_price", "expected"), [
    ("1200.00", ("1200.00", "0.00", "216.00", "1416.00")),
    ("800.00", ("800.00", "0.00", "144.00", "944.00")),
])
async def test_the_catalog_price_at_conversion_decides(stubs, settings, cart_engine, plan, new_price, expected):
    user = new_user()
    cart = await a_cart(stubs, settings, user, plan_id=plan.plan_id)
    assert figures(cart) == ("1000.00", "0.00", "180.00", "1180.00")
    await execute(cart_engine, "UPDATE plans SET price = :price WHERE plan_id = :plan", price=Decimal(new_price),
                  plan=plan.plan_id)

    converted = await stubs.checkout.ConvertCart(convert_request(cart.token, user))

    assert figures(converted) == expected
    assert [(line.unit_price, line.unit_price_inr) for line in converted.lines] == [(new_price, new_price)]


async def test_a_new_cart_takes_its_plans_from_the_catalog_cache_and_the_conversion_the_databases(
        stubs, settings, cart_engine, wide_engine, plan):
    """CreateCart looks its plans up in the process's catalog cache: no read. A price changed while
    the cache has not heard of it (its event missed) shows in a new cart until the cache is dropped,
    but ConvertCart prices from the database: the price charged is the catalog's."""
    user = new_user()
    await a_cart(stubs, settings, user, plan_id=plan.plan_id)  # the cache is filled
    await execute(cart_engine, "UPDATE plans SET price = 1200.00 WHERE plan_id = :plan", plan=plan.plan_id)

    with round_trips(wide_engine) as trips:
        cart = await a_cart(stubs, settings, user, plan_id=plan.plan_id)
    assert trips == ["BEGIN", "INSERT carts", "WITH -"]  # the cart; its event and audit row + COMMIT
    assert figures(cart) == ("1000.00", "0.00", "180.00", "1180.00")  # the cached price

    converted = await stubs.checkout.ConvertCart(convert_request(cart.token, user))
    assert figures(converted) == ("1200.00", "0.00", "216.00", "1416.00")


async def test_a_plan_the_cached_catalog_does_not_know_is_read(stubs, settings, cart_engine, wide_engine, plan):
    user = new_user()
    await a_cart(stubs, settings, user, plan_id=plan.plan_id)  # the cache is filled
    newer = str(uuid.uuid4())
    async with cart_engine.begin() as conn:  # a plan added with no event for the cache
        await conn.execute(insert(plans).values(plan_id=newer, internship_id=plan.internship_id, period_value=2,
                                                period_unit="month", price=Decimal("1500.00"), currency="INR"))

    with round_trips(wide_engine) as trips:
        cart = await a_cart(stubs, settings, user, plan_id=newer)
    assert trips == ["BEGIN", "SELECT plans", "INSERT carts", "WITH -"]
    assert figures(cart) == ("1500.00", "0.00", "270.00", "1770.00")
    await fails_with(a_cart(stubs, settings, user, plan_id=str(uuid.uuid4())), 1005)  # none such: as before


LIST_PRICE = ("1000.00", "0.00", "180.00", "1180.00")
SALE_PRICE = ("900.00", "0.00", "162.00", "1062.00")
TOMORROW = datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1)
SALE_CHANGES = {  # the sale's window when the cart is made, its change, the cart's figures, the conversion's
    "ended": ({}, "UPDATE sales SET ends_at = now() - interval '1 second' WHERE sale_slug = :slug", SALE_PRICE,
              LIST_PRICE),
    "started": ({"starts_at": TOMORROW}, "UPDATE sales SET starts_at = now() - interval '1 second' WHERE sale_slug = :slug",
                LIST_PRICE, SALE_PRICE),
}


@pytest.mark.parametrize("change", list(SALE_CHANGES))
async def test_the_sale_as_it_stands_at_conversion_decides(stubs, settings, cart_engine, plan, change):
    user = new_user()
    window, statement, in_cart, converted_figures = SALE_CHANGES[change]
    slug = await new_sale(cart_engine, plan, **window)
    cart = await a_cart(stubs, settings, user, plan_id=plan.plan_id, sale_slug=slug)
    assert figures(cart) == in_cart
    await execute(cart_engine, statement, slug=slug)

    converted = await stubs.checkout.ConvertCart(convert_request(cart.token, user))

    assert figures(converted) == converted_figures
    assert [(line.unit_price, line.unit_price_inr) for line in converted.lines] == [(converted_figures[0],) * 2]


async def test_a_coupon_whose_value_changed_gives_its_value_at_conversion(stubs, settings, cart_engine, plan):
    user = new_user()
    code = await new_coupon(cart_engine, "10")
    cart = await a_cart(stubs, settings, user, plan_id=plan.plan_id, coupon=code)
    assert figures(cart) == ("1000.00", "100.00", "162.00", "1062.00")
    await execute(cart_engine, "UPDATE coupons SET value = 25 WHERE code = :code", code=code)

    converted = await stubs.checkout.ConvertCart(convert_request(cart.token, user))

    assert figures(converted) == ("1000.00", "250.00", "135.00", "885.00") and converted.discount_code == code


async def test_the_exchange_rate_at_conversion_is_frozen_into_the_snapshot(stubs, settings, cart_engine, plan):
    user = new_user()
    cart = await a_cart(stubs, settings, user, plan_id=plan.plan_id, currency="EUR")
    assert (cart.currency, cart.subtotal) == ("EUR", "11.00")  # 1000 x 0.011
    try:
        await execute(cart_engine, "UPDATE exchange_rates SET rate = 0.0125 WHERE currency = 'EUR'")
        converted = await stubs.checkout.ConvertCart(convert_request(cart.token, user, country="US"))
    finally:
        await execute(cart_engine, "UPDATE exchange_rates SET rate = 0.011 WHERE currency = 'EUR'")
    assert (converted.currency, converted.exchange_rate) == ("EUR", "0.0125")
    assert figures(converted) == ("12.50", "0.00", "0.00", "12.50")  # an export: no tax
    assert [(line.unit_price, line.unit_price_inr) for line in converted.lines] == [("12.50", "1000.00")]
    again = await stubs.checkout.ConvertCart(convert_request(cart.token, user, converted.order_token))
    assert again.exchange_rate == "0.0125"  # frozen: the rate is back at 0.011 now


COUPON_CHANGES = {
    "expired": ("UPDATE coupons SET ends_at = now() - interval '1 second' WHERE code = :code",
                "code: coupon has expired"),
    "moved to the future": ("UPDATE coupons SET starts_at = now() + interval '1 day' WHERE code = :code",
                            "code: coupon is not valid yet"),
    "minimum raised": ("UPDATE coupons SET min_subtotal = 5000 WHERE code = :code",
                       "code: cart subtotal is below the coupon's minimum"),
    "narrowed to another internship": (
        f"UPDATE coupons SET internship_ids = ARRAY['{OTHER_INTERNSHIP}']::uuid[] WHERE code = :code",
        "code: coupon does not apply to any internship in the cart"),
    "deleted": ("DELETE FROM coupons WHERE code = :code", f"code: {UNUSABLE_CODE}"),
}


@pytest.mark.parametrize("change", list(COUPON_CHANGES))
async def test_a_coupon_that_no_longer_holds_is_refused_with_2004_and_changes_nothing(stubs, settings, cart_engine,
                                                                                     plan, change):
    user = new_user()
    code = await new_coupon(cart_engine)
    cart = await a_cart(stubs, settings, user, plan_id=plan.plan_id, coupon=code)
    assert cart.discount_amount == "100.00"
    statement, reason = COUPON_CHANGES[change]
    await execute(cart_engine, statement, code=code)

    detail = await fails_with(stubs.checkout.ConvertCart(convert_request(cart.token, user)), 2004)

    assert list(detail.validation_messages) == [reason]
    await nothing_changed(cart_engine, cart, code, None if change == "deleted" else 0, [])


async def test_the_last_redemption_taken_by_another_students_order_refuses_this_one(stubs, settings, cart_engine,
                                                                                    plan):
    late, early = new_user(), new_user()
    code = await new_coupon(cart_engine, max_redemptions=1)
    late_cart = await a_cart(stubs, settings, late, plan_id=plan.plan_id, coupon=code)
    early_cart = await a_cart(stubs, settings, early, plan_id=plan.plan_id, coupon=code)
    assert late_cart.discount_amount == early_cart.discount_amount == "100.00"  # both carts took it while free
    first = await stubs.checkout.ConvertCart(convert_request(early_cart.token, early))
    assert first.discount_amount == "100.00"

    detail = await fails_with(stubs.checkout.ConvertCart(convert_request(late_cart.token, late)), 2004)

    assert list(detail.validation_messages) == ["code: coupon redemption limit reached"]
    await nothing_changed(cart_engine, late_cart, code, 1, [first.order_token])


# -- ReleaseCart ----------------------------------------------------------------------------------------
def release_request(order: str, reopen: bool, reason: str = "abandoned") -> cart_checkout_pb2.ReleaseCartRequest:
    return cart_checkout_pb2.ReleaseCartRequest(order_token=order, reopen_cart=reopen, reason=reason)


async def test_release_gives_back_the_hold_and_reopens_the_cart_once(stubs, settings, cart_engine):
    user = new_user()
    code = await new_coupon(cart_engine, max_redemptions=1)
    cart = await a_cart(stubs, settings, user, coupon=code)
    order = str(uuid.uuid4())
    await stubs.checkout.ConvertCart(convert_request(cart.token, user, order))
    async with cart_engine.begin() as conn:  # the order took long: the cart's own expiry has passed
        await conn.execute(update(carts).where(carts.c.token == cart.token).values(expires_at=carts.c.created_at))

    done = await stubs.checkout.ReleaseCart(release_request(order, True))

    assert (done.coupon_released, done.cart_reopened) == (True, True)
    stored = await cart_row(cart_engine, cart.token)
    assert (stored.status, stored.order_token, stored.user_id) == ("active", None, user)
    ttl = datetime.timedelta(seconds=settings.cart_ttl)
    assert stored.expires_at >= datetime.datetime.now(datetime.UTC) + ttl - datetime.timedelta(seconds=30)
    assert await ledger(cart_engine, code) == (0, [])
    async with cart_engine.connect() as conn:
        status = (await conn.execute(select(cart_conversions.c.status).where(
            cart_conversions.c.order_token == order))).scalar_one()
    assert status == "released"
    reopened = [p for s, p in await cart_events(cart_engine, cart.token) if s == "checkout.cart.reopened"]
    assert [(p["order_token"], p["status"]) for p in reopened] == [(order, "active")]
    assert (await stubs.carts.GetCart(cart_pb2.GetCartRequest(token=cart.token),
                                      metadata=bearer(settings, user))).status == "active"

    again = await stubs.checkout.ReleaseCart(release_request(order, True))
    assert (again.coupon_released, again.cart_reopened) == (False, False)
    assert len([s for s, _ in await cart_events(cart_engine, cart.token) if s == "checkout.cart.reopened"]) == 1
    detail = await fails_with(stubs.checkout.ConvertCart(convert_request(cart.token, user, order)), 1000)
    assert detail.validation_messages[0].startswith("order_token:")  # a released order stays released
    second = await stubs.checkout.ConvertCart(convert_request(cart.token, user))  # a new order takes it all again
    assert second.discount_code == code and await ledger(cart_engine, code) == (1, [second.order_token])


async def test_release_without_reopening_keeps_the_cart_converted(stubs, settings, cart_engine):
    user = new_user()
    code = await new_coupon(cart_engine)
    cart = await a_cart(stubs, settings, user, coupon=code)
    first = await stubs.checkout.ConvertCart(convert_request(cart.token, user))

    done = await stubs.checkout.ReleaseCart(release_request(first.order_token, False, "expired"))

    assert (done.coupon_released, done.cart_reopened) == (True, False)
    assert (await cart_row(cart_engine, cart.token)).status == "converted"
    assert await ledger(cart_engine, code) == (0, [])
    assert await stubs.checkout.ConvertCart(convert_request(cart.token, user)) == first  # still that order's cart
    unknown = await stubs.checkout.ReleaseCart(release_request(str(uuid.uuid4()), True, "cancelled"))
    assert (unknown.coupon_released, unknown.cart_reopened) == (False, False)
    await fails_with(stubs.checkout.ReleaseCart(release_request("nope", True, "bad\x07reason")), 1000)
