"""The cart service over real gRPC, against real PostgreSQL: the happy paths and every refusal."""

from __future__ import annotations

import uuid
from decimal import Decimal

import grpc
import pytest
from sqlalchemy import func, insert, select, update

from cart_svc.app import registration
from cart_svc.domain.coupons import UNUSABLE_CODE
from cart_svc.seed import SAMPLE_INTERNSHIPS
from cart_svc.tables import audit_log, carts, coupon_attempts, coupons, outbox
from checkout.v1 import cart_pb2, cart_pb2_grpc, catalog_pb2, catalog_pb2_grpc, common_pb2
from common.grpc_errors import detail_of
from tests.support.grpc_servers import serving
from tests.support.tokens import bearer, new_user

BACKEND_1M = "7a1e0000-0000-4000-8000-000000000101"
BACKEND_3M = "7a1e0000-0000-4000-8000-000000000103"
BACKEND = "5b7f6a2e-1c1d-4c3a-9f55-0d0c1a000001"
DESIGN_1M = "7a1e0000-0000-4000-8000-000000000301"


@pytest.fixture
async def stubs(settings, cart_engine):
    async with serving(settings, registration(cart_engine, settings)) as channel:
        yield cart_pb2_grpc.CartServiceStub(channel), catalog_pb2_grpc.CatalogServiceStub(channel)


@pytest.fixture
def cart_stub(stubs):
    return stubs[0]


async def fails_with(call, code: int) -> common_pb2.ErrorDetail:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    detail = detail_of(caught.value)
    assert detail is not None, caught.value
    assert detail.code == code, detail
    assert detail.correlation_id
    return detail


def new_cart(plan_id: str = BACKEND_1M, quantity: int = 1, **kwargs) -> cart_pb2.CreateCartRequest:
    return cart_pb2.CreateCartRequest(items=[cart_pb2.CartItemInput(plan_id=plan_id, quantity=quantity)], **kwargs)


async def test_catalog_lists_sample_internships_with_plans(stubs):
    listing = await stubs[1].ListInternships(catalog_pb2.ListInternshipsRequest())
    sample = {internship_id for internship_id, *_ in SAMPLE_INTERNSHIPS}
    listed = [internship for internship in listing.internships if internship.internship_id in sample]
    assert len(listed) == len(sample) >= 4  # other tests may add internships of their own
    for internship in listed:
        assert 2 <= len(internship.plans) <= 3
        assert len({plan.period.value for plan in internship.plans}) == len(internship.plans)
        assert all(plan.currency == "INR" and Decimal(plan.price) > 0 for plan in internship.plans)


async def test_create_then_get_guest_cart(cart_stub):
    created = await cart_stub.CreateCart(new_cart(quantity=2, device_id="dev-1",
                                                  analytics_data=[common_pb2.AnalyticsData(name="utm_source", value="mail")]))
    assert created.status == "active" and created.user_id == ""
    assert created.subtotal == "2998.00" and created.tax_rate == "18"
    assert created.tax_amount == "539.64" and created.total == "3537.64"
    fetched = await cart_stub.GetCart(cart_pb2.GetCartRequest(token=created.token))
    assert fetched == created


async def test_create_by_internship_and_period(cart_stub):
    created = await cart_stub.CreateCart(cart_pb2.CreateCartRequest(items=[cart_pb2.CartItemInput(
        internship_id=BACKEND, period=common_pb2.Period(value=3, unit="month"), quantity=1)]))
    assert created.items[0].plan_id == BACKEND_3M


async def test_empty_cart_is_draft(cart_stub):
    created = await cart_stub.CreateCart(cart_pb2.CreateCartRequest())
    assert created.status == "draft" and created.total == "0.00"


async def test_unknown_cart_is_1001(cart_stub):
    await fails_with(cart_stub.GetCart(cart_pb2.GetCartRequest(token=str(uuid.uuid4()))), 1001)


async def test_every_bad_field_is_listed(cart_stub):
    detail = await fails_with(cart_stub.CreateCart(cart_pb2.CreateCartRequest(
        items=[cart_pb2.CartItemInput(plan_id="nope", quantity=0)], currency="XYZ", sale_slug="Bad Slug!")), 1000)
    text = " ".join(detail.validation_messages)
    for field in ("items[0].plan_id", "items[0].quantity", "currency", "sale_slug"):
        assert field in text


async def test_unknown_plan_is_1005(cart_stub):
    await fails_with(cart_stub.CreateCart(new_cart(plan_id=str(uuid.uuid4()))), 1005)


async def test_items_add_switch_remove(cart_stub):
    cart = await cart_stub.CreateCart(new_cart())
    cart = await cart_stub.AddItem(cart_pb2.AddItemRequest(token=cart.token, plan_id=DESIGN_1M, quantity=2))
    assert len(cart.items) == 2
    backend_item = next(item for item in cart.items if item.plan_id == BACKEND_1M)
    cart = await cart_stub.SwitchPlan(cart_pb2.SwitchPlanRequest(token=cart.token, plan_id=BACKEND_3M, item_id=backend_item.item_id))
    assert {item.plan_id for item in cart.items} == {BACKEND_3M, DESIGN_1M}
    await fails_with(cart_stub.SwitchPlan(cart_pb2.SwitchPlanRequest(token=cart.token, plan_id=DESIGN_1M, item_id=backend_item.item_id)), 1000)
    cart = await cart_stub.RemoveItem(cart_pb2.RemoveItemRequest(token=cart.token, item_id=backend_item.item_id))
    assert [item.plan_id for item in cart.items] == [DESIGN_1M]
    await fails_with(cart_stub.RemoveItem(cart_pb2.RemoveItemRequest(token=cart.token, item_id=str(uuid.uuid4()))), 1005)


async def test_quantity_bounds(cart_stub):
    cart = await cart_stub.CreateCart(new_cart(quantity=10))
    await fails_with(cart_stub.AddItem(cart_pb2.AddItemRequest(token=cart.token, plan_id=BACKEND_1M, quantity=1)), 1000)
    await fails_with(cart_stub.CreateCart(new_cart(quantity=11)), 1000)


async def test_user_cart_is_only_for_its_user(cart_stub, settings):
    owner, stranger = new_user(), new_user()
    cart = await cart_stub.CreateCart(new_cart(), metadata=bearer(settings, owner))
    assert cart.user_id == owner
    assert (await cart_stub.GetCart(cart_pb2.GetCartRequest(token=cart.token), metadata=bearer(settings, owner))).token == cart.token
    await fails_with(cart_stub.GetCart(cart_pb2.GetCartRequest(token=cart.token)), 1101)
    await fails_with(cart_stub.GetCart(cart_pb2.GetCartRequest(token=cart.token), metadata=bearer(settings, stranger)), 1102)
    await fails_with(cart_stub.AddItem(cart_pb2.AddItemRequest(token=cart.token, plan_id=DESIGN_1M, quantity=1),
                                       metadata=bearer(settings, stranger)), 1102)


async def test_estimate_tax_by_place_of_supply(cart_stub):
    cart = await cart_stub.CreateCart(new_cart(plan_id=DESIGN_1M))  # 999.00
    same_state = await cart_stub.EstimateCart(cart_pb2.EstimateCartRequest(cart_token=cart.token, billing=common_pb2.Billing(country="IN", state="KA")))
    assert [(t.name, t.rate, t.amount) for t in same_state.taxes] == [("CGST", "9", "89.91"), ("SGST", "9", "89.91")]
    assert same_state.total == "1178.82"
    other_state = await cart_stub.EstimateCart(cart_pb2.EstimateCartRequest(cart_token=cart.token, billing=common_pb2.Billing(country="IN", state="MH")))
    assert [(t.name, t.amount) for t in other_state.taxes] == [("IGST", "179.82")]
    export = await cart_stub.EstimateCart(cart_pb2.EstimateCartRequest(cart_token=cart.token, billing=common_pb2.Billing(country="US")))
    assert list(export.taxes) == [] and export.total == "999.00"
    await fails_with(cart_stub.EstimateCart(cart_pb2.EstimateCartRequest(cart_token=cart.token, billing=common_pb2.Billing(country="IN", state="ZZ"))), 1000)


async def test_estimate_in_another_currency_records_the_rate(cart_stub):
    cart = await cart_stub.CreateCart(new_cart())
    estimate = await cart_stub.EstimateCart(cart_pb2.EstimateCartRequest(cart_token=cart.token, currency="USD"))
    assert estimate.currency == "USD" and estimate.exchange_rate == "0.012"
    assert estimate.subtotal == "17.99"  # 1499 x 0.012 = 17.988 → 17.99 (half-up)


async def _coupon(cart_engine, **values) -> str:
    code = values.pop("code", f"T{uuid.uuid4().hex[:10].upper()}")
    async with cart_engine.begin() as conn:
        await conn.execute(insert(coupons).values(code=code, kind=values.pop("kind", "percent"), value=Decimal(values.pop("value", "10")), **values))
    return code


async def test_coupon_apply_and_remove(cart_stub, cart_engine):
    code = await _coupon(cart_engine)
    cart = await cart_stub.CreateCart(new_cart())
    cart = await cart_stub.ApplyCoupon(cart_pb2.ApplyCouponRequest(token=cart.token, code=code.lower()))
    assert cart.discount_code == code and cart.discount_amount == "149.90"
    cart = await cart_stub.RemoveCoupon(cart_pb2.RemoveCouponRequest(token=cart.token))
    assert cart.discount_code == "" and cart.discount_amount == "0.00"


async def test_invalid_coupons_are_2004_with_reasons(cart_stub, cart_engine):
    cart = await cart_stub.CreateCart(new_cart())
    detail = await fails_with(cart_stub.ApplyCoupon(cart_pb2.ApplyCouponRequest(token=cart.token, code="NOSUCHCODE")), 2004)
    assert detail.validation_messages
    big = await _coupon(cart_engine, min_subtotal=Decimal("5000.00"), listed=True)
    detail = await fails_with(cart_stub.ApplyCoupon(cart_pb2.ApplyCouponRequest(token=cart.token, code=big)), 2004)
    assert any("minimum" in message for message in detail.validation_messages)
    private = await _coupon(cart_engine, min_subtotal=Decimal("5000.00"))  # unlisted: no reason given
    detail = await fails_with(cart_stub.ApplyCoupon(cart_pb2.ApplyCouponRequest(token=cart.token, code=private)), 2004)
    assert list(detail.validation_messages) == [f"code: {UNUSABLE_CODE}"]
    unchanged = await cart_stub.GetCart(cart_pb2.GetCartRequest(token=cart.token))
    assert unchanged.discount_code == ""
    async with cart_engine.connect() as conn:  # each refusal counted against the cart, in its own transaction
        failures = (await conn.execute(select(coupon_attempts.c.failures).where(
            coupon_attempts.c.cart_token == cart.token))).scalar_one()
    assert failures == 3


async def test_expired_and_converted_carts_refuse_changes(cart_stub, cart_engine):
    expired = await cart_stub.CreateCart(new_cart())
    converted = await cart_stub.CreateCart(new_cart())
    async with cart_engine.begin() as conn:
        await conn.execute(update(carts).where(carts.c.token == expired.token).values(expires_at=carts.c.created_at))
        await conn.execute(update(carts).where(carts.c.token == converted.token).values(status="converted"))
    assert (await cart_stub.GetCart(cart_pb2.GetCartRequest(token=expired.token))).status == "expired"
    await fails_with(cart_stub.AddItem(cart_pb2.AddItemRequest(token=expired.token, plan_id=DESIGN_1M, quantity=1)), 1002)
    await fails_with(cart_stub.AddItem(cart_pb2.AddItemRequest(token=converted.token, plan_id=DESIGN_1M, quantity=1)), 1003)


async def test_login_claims_guest_cart_and_merges_the_users_cart(cart_stub, settings, cart_engine):
    user = new_user()
    small = await _coupon(cart_engine, value="5")
    large = await _coupon(cart_engine, value="20")
    mine = await cart_stub.CreateCart(new_cart(quantity=9), metadata=bearer(settings, user))
    await cart_stub.ApplyCoupon(cart_pb2.ApplyCouponRequest(token=mine.token, code=small), metadata=bearer(settings, user))
    guest = await cart_stub.CreateCart(new_cart(quantity=3))
    await cart_stub.AddItem(cart_pb2.AddItemRequest(token=guest.token, plan_id=DESIGN_1M, quantity=1))
    await cart_stub.ApplyCoupon(cart_pb2.ApplyCouponRequest(token=guest.token, code=large))
    await fails_with(cart_stub.LoginToCart(cart_pb2.LoginToCartRequest(token=guest.token)), 1101)
    merged = await cart_stub.LoginToCart(cart_pb2.LoginToCartRequest(token=guest.token), metadata=bearer(settings, user))
    assert merged.token == guest.token and merged.user_id == user
    quantities = {item.plan_id: item.quantity for item in merged.items}
    assert quantities == {BACKEND_1M: 10, DESIGN_1M: 1}  # 9 + 3 capped at 10
    assert merged.discount_code == large
    old = await cart_stub.GetCart(cart_pb2.GetCartRequest(token=mine.token), metadata=bearer(settings, user))
    assert old.status == "expired"
    status = await cart_stub.CheckCartAuth(cart_pb2.CheckCartAuthRequest(token=guest.token), metadata=bearer(settings, user))
    assert status.authenticated and status.owns_cart and status.user_id == user
    anonymous = await cart_stub.CheckCartAuth(cart_pb2.CheckCartAuthRequest(token=guest.token))
    assert not anonymous.authenticated and not anonymous.owns_cart
    async with cart_engine.connect() as conn:
        audited = (await conn.execute(select(audit_log.c.entity_id, audit_log.c.action, audit_log.c.after).where(
            audit_log.c.entity_id.in_((guest.token, mine.token)), audit_log.c.action != "created"))).all()
    assert sorted((entity, action) for entity, action, _ in audited) == sorted(
        [(guest.token, "claimed"), (mine.token, "merged")])
    assert {action: after for _, action, after in audited}["claimed"]["merged_from"] == mine.token
    await cart_stub.LoginToCart(cart_pb2.LoginToCartRequest(token=guest.token), metadata=bearer(settings, user))
    async with cart_engine.connect() as conn:  # a login by the owner again changes nothing: no audit row
        again = (await conn.execute(select(func.count()).select_from(audit_log).where(
            audit_log.c.entity_id == guest.token, audit_log.c.action == "claimed"))).scalar_one()
    assert again == 1


async def test_discounts_list_says_why_not(cart_stub, cart_engine):
    code = await _coupon(cart_engine, min_subtotal=Decimal("100000.00"), listed=True)
    private = await _coupon(cart_engine)
    cart = await cart_stub.CreateCart(new_cart())
    listing = await cart_stub.ListDiscounts(cart_pb2.ListDiscountsRequest(token=cart.token))
    mine = next(d for d in listing.discounts if d.code == code)
    assert not mine.applicable and "minimum" in mine.reason
    assert private not in {d.code for d in listing.discounts}  # unlisted codes are never disclosed
    await cart_stub.ApplyCoupon(cart_pb2.ApplyCouponRequest(token=cart.token, code=private))
    listing = await cart_stub.ListDiscounts(cart_pb2.ListDiscountsRequest(token=cart.token))
    assert next(d for d in listing.discounts if d.code == private).applicable  # but the cart's own code is


async def test_a_new_cart_publishes_created_and_is_audited(cart_stub, settings, cart_engine):
    user = new_user()
    cart = await cart_stub.CreateCart(new_cart(quantity=2), metadata=bearer(settings, user))
    async with cart_engine.connect() as conn:
        events = (await conn.execute(select(outbox.c.subject, outbox.c.payload).where(
            outbox.c.aggregate_id == cart.token))).all()
        audits = (await conn.execute(select(audit_log.c.actor, audit_log.c.action).where(
            audit_log.c.entity_id == cart.token))).all()
    [(subject, payload)] = events
    assert subject == "checkout.cart.created"
    assert (payload["cart_token"], payload["user_id"], payload["status"], payload["total"], payload["currency"]) == (
        cart.token, user, "active", cart.total, "INR")
    assert [(item["plan_id"], item["quantity"]) for item in payload["items"]] == [(BACKEND_1M, 2)]
    assert [tuple(row) for row in audits] == [(user, "created")]
