"""The admin API over real gRPC, against real PostgreSQL: each RPC, its refusals and its audit rows."""

from __future__ import annotations

import uuid
from decimal import Decimal

import grpc
import pytest
from sqlalchemy import select

from cart_svc.app import registration
from cart_svc.tables import audit_log, coupons, exchange_rate_changes
from checkout.v1 import admin_pb2, admin_pb2_grpc, cart_pb2, cart_pb2_grpc, catalog_pb2, catalog_pb2_grpc, common_pb2
from common.grpc_errors import detail_of
from tests.support.grpc_servers import serving
from tests.support.tokens import bearer, new_user

BACKEND = "5b7f6a2e-1c1d-4c3a-9f55-0d0c1a000001"
DESIGN = "5b7f6a2e-1c1d-4c3a-9f55-0d0c1a000003"
BACKEND_1M = "7a1e0000-0000-4000-8000-000000000101"


@pytest.fixture
async def channel(settings, cart_engine):
    async with serving(settings, registration(cart_engine, settings)) as opened:
        yield opened


@pytest.fixture
def admin_stub(channel):
    return admin_pb2_grpc.AdminServiceStub(channel)


@pytest.fixture
def admin(settings):
    user_id = new_user()
    correlation_id = f"admin-test-{uuid.uuid4().hex[:8]}"
    return user_id, correlation_id, (*bearer(settings, user_id, ["admin"]), ("x-correlation-id", correlation_id))


async def fails_with(call, code: int) -> common_pb2.ErrorDetail:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    detail = detail_of(caught.value)
    assert detail is not None, caught.value
    assert detail.code == code, detail
    return detail


async def audit_rows(cart_engine, entity_type: str, entity_id: str) -> list:
    async with cart_engine.connect() as conn:
        return list((await conn.execute(select(audit_log).where(
            audit_log.c.entity_type == entity_type, audit_log.c.entity_id == entity_id).order_by(audit_log.c.id))).all())


def fresh_code() -> str:
    return f"adm-{uuid.uuid4().hex[:10]}"


# -- authorization -----------------------------------------------------------------------------------
EMPTY_CALLS = [
    ("CreateCoupon", admin_pb2.CreateCouponRequest()),
    ("CreateSale", admin_pb2.CreateSaleRequest()),
    ("CreateInternship", admin_pb2.CreateInternshipRequest()),
    ("SetExchangeRate", admin_pb2.SetExchangeRateRequest()),
]


@pytest.mark.parametrize(("method", "request_message"), EMPTY_CALLS)
async def test_anonymous_is_1101_and_non_admin_is_1102_before_any_validation(admin_stub, settings, method, request_message):
    rpc = getattr(admin_stub, method)
    await fails_with(rpc(request_message), 1101)
    await fails_with(rpc(request_message, metadata=bearer(settings, new_user(), ["student"])), 1102)


# -- coupons ---------------------------------------------------------------------------------------------
async def test_create_coupon_stores_it_upper_case_and_audits_it(admin_stub, admin, cart_engine):
    admin_id, correlation_id, metadata = admin
    code = fresh_code()
    created = await admin_stub.CreateCoupon(admin_pb2.CreateCouponRequest(
        code=code, kind="fixed", value="250", min_subtotal="1000", starts_at="2026-01-01T05:30:00+05:30",
        ends_at="2099-01-01T00:00:00Z", max_redemptions=100, max_redemptions_per_user=1,
        internship_ids=[BACKEND, DESIGN.upper()]), metadata=metadata)
    assert created == admin_pb2.Coupon(
        code=code.upper(), kind="fixed", value="250.00", currency="INR", min_subtotal="1000.00",
        starts_at="2026-01-01T00:00:00Z", ends_at="2099-01-01T00:00:00Z", max_redemptions=100,
        max_redemptions_per_user=1, internship_ids=sorted([BACKEND, DESIGN]), redeemed_count=0)
    async with cart_engine.connect() as conn:
        stored = (await conn.execute(select(coupons).where(coupons.c.code == code.upper()))).one()
    assert stored.value == Decimal("250.00") and stored.max_redemptions == 100
    [row] = await audit_rows(cart_engine, "coupon", code.upper())
    assert (row.actor, row.action, row.correlation_id, row.before) == (admin_id, "create", correlation_id, None)
    assert row.after["value"] == "250.00" and row.after["internship_ids"] == sorted([BACKEND, DESIGN])


async def test_coupon_with_defaults_is_unlimited_percent(admin_stub, admin):
    created = await admin_stub.CreateCoupon(admin_pb2.CreateCouponRequest(code=fresh_code(), kind="percent", value="12.5"),
                                            metadata=admin[2])
    assert (created.value, created.currency, created.min_subtotal) == ("12.50", "INR", "0.00")
    assert (created.starts_at, created.ends_at, created.max_redemptions, list(created.internship_ids)) == ("", "", 0, [])


async def test_every_bad_coupon_field_is_listed(admin_stub, admin):
    detail = await fails_with(admin_stub.CreateCoupon(admin_pb2.CreateCouponRequest(
        code="x!", kind="bogus", value="-1", currency="XYZ", min_subtotal="abc", starts_at="yesterday",
        ends_at="2026-01-01T00:00:00", max_redemptions=-1, max_redemptions_per_user=-2, internship_ids=["nope"]),
        metadata=admin[2]), 1000)
    fields = {message.split(":")[0] for message in detail.validation_messages}
    assert fields == {"code", "kind", "value", "currency", "min_subtotal", "starts_at", "ends_at", "max_redemptions",
                      "max_redemptions_per_user", "internship_ids[0]"}


@pytest.mark.parametrize("fields", [
    {"kind": "percent", "value": "100.01"},
    {"kind": "percent", "value": "0"},
    {"kind": "percent", "value": "10", "currency": "USD"},
    {"kind": "fixed", "value": "10", "starts_at": "2026-02-01T00:00:00Z", "ends_at": "2026-02-01T00:00:00Z"},
    {"kind": "fixed", "value": "10.001"},
])
async def test_coupon_value_and_window_rules(admin_stub, admin, fields):
    await fails_with(admin_stub.CreateCoupon(admin_pb2.CreateCouponRequest(code=fresh_code(), **fields), metadata=admin[2]), 1000)


async def test_duplicate_coupon_code_is_1006_whatever_the_case(admin_stub, admin):
    code = fresh_code()
    await admin_stub.CreateCoupon(admin_pb2.CreateCouponRequest(code=code, kind="percent", value="5"), metadata=admin[2])
    await fails_with(admin_stub.CreateCoupon(admin_pb2.CreateCouponRequest(code=code.upper(), kind="percent", value="5"),
                                             metadata=admin[2]), 1006)


async def test_unknown_internship_is_1005(admin_stub, admin, cart_engine):
    code, unknown = fresh_code(), str(uuid.uuid4())
    detail = await fails_with(admin_stub.CreateCoupon(admin_pb2.CreateCouponRequest(
        code=code, kind="percent", value="5", internship_ids=[BACKEND, unknown]), metadata=admin[2]), 1005)
    assert any(unknown in message for message in detail.validation_messages)
    assert await audit_rows(cart_engine, "coupon", code.upper()) == []


# -- sales ---------------------------------------------------------------------------------------------------
async def test_create_sale_then_read_it_from_the_catalog(admin_stub, admin, channel, cart_engine):
    slug = f"sale-{uuid.uuid4().hex[:8]}"
    created = await admin_stub.CreateSale(admin_pb2.CreateSaleRequest(
        sale_slug=slug, kind="percent", value="15", internship_ids=[BACKEND], ends_at="2099-01-01T00:00:00Z"), metadata=admin[2])
    assert (created.sale_slug, created.value, created.active, list(created.internship_ids)) == (slug, "15.00", True, [BACKEND])
    assert await catalog_pb2_grpc.CatalogServiceStub(channel).GetSale(catalog_pb2.GetSaleRequest(sale_slug=slug)) == created
    await fails_with(admin_stub.CreateSale(admin_pb2.CreateSaleRequest(sale_slug=slug, kind="fixed", value="100"),
                                           metadata=admin[2]), 1006)
    [row] = await audit_rows(cart_engine, "sale", slug)
    assert row.actor == admin[0] and row.after["kind"] == "percent"


async def test_bad_sale_fields_are_listed(admin_stub, admin):
    detail = await fails_with(admin_stub.CreateSale(admin_pb2.CreateSaleRequest(
        sale_slug="Bad Slug", kind="", value="", internship_ids=["x"]), metadata=admin[2]), 1000)
    assert {m.split(":")[0] for m in detail.validation_messages} == {"sale_slug", "kind", "value", "internship_ids[0]"}


# -- internships ---------------------------------------------------------------------------------------------
def plan(value: int, unit: str = "month", price: str = "999", plan_id: str = "") -> admin_pb2.PlanInput:
    return admin_pb2.PlanInput(plan_id=plan_id, period=common_pb2.Period(value=value, unit=unit), price=price)


async def test_create_internship_generates_ids_and_is_sellable(admin_stub, admin, channel, cart_engine):
    created = await admin_stub.CreateInternship(admin_pb2.CreateInternshipRequest(
        title=" Rust Systems ", description="Low-level work.", plans=[plan(1), plan(1, "year", "9999.5")]), metadata=admin[2])
    assert created.title == "Rust Systems" and uuid.UUID(created.internship_id)
    assert [(p.period.value, p.period.unit, p.price, p.currency) for p in created.plans] == [
        (1, "month", "999.00", "INR"), (1, "year", "9999.50", "INR")]
    listing = await catalog_pb2_grpc.CatalogServiceStub(channel).ListInternships(catalog_pb2.ListInternshipsRequest())
    assert created.internship_id in {entry.internship_id for entry in listing.internships}
    cart = await cart_pb2_grpc.CartServiceStub(channel).CreateCart(cart_pb2.CreateCartRequest(
        items=[cart_pb2.CartItemInput(plan_id=created.plans[1].plan_id, quantity=1)]))
    assert cart.subtotal == "9999.50"
    [row] = await audit_rows(cart_engine, "internship", created.internship_id)
    assert row.actor == admin[0] and len(row.after["plans"]) == 2


async def test_given_ids_are_kept_and_reuse_is_1006(admin_stub, admin):
    internship_id, plan_id = str(uuid.uuid4()), str(uuid.uuid4())
    created = await admin_stub.CreateInternship(admin_pb2.CreateInternshipRequest(
        internship_id=internship_id, title="Go Services", plans=[plan(3, plan_id=plan_id)]), metadata=admin[2])
    assert created.internship_id == internship_id and created.plans[0].plan_id == plan_id
    await fails_with(admin_stub.CreateInternship(admin_pb2.CreateInternshipRequest(
        internship_id=internship_id, title="Again", plans=[plan(3)]), metadata=admin[2]), 1006)
    await fails_with(admin_stub.CreateInternship(admin_pb2.CreateInternshipRequest(
        title="Plan reused", plans=[plan(3, plan_id=BACKEND_1M)]), metadata=admin[2]), 1006)


async def test_bad_internship_fields_are_listed(admin_stub, admin):
    detail = await fails_with(admin_stub.CreateInternship(admin_pb2.CreateInternshipRequest(
        internship_id="nope", title="  ", plans=[plan(12), plan(1, "year"), plan(0, "week", "-1"),
                                                 admin_pb2.PlanInput(price="10")]), metadata=admin[2]), 1000)
    text = " | ".join(detail.validation_messages)
    for expected in ("internship_id", "title: required", "plans[1].period: same length as plans[0]",
                     "plans[2].period.unit", "plans[2].period.value", "plans[2].price", "plans[3].period: required"):
        assert expected in text
    for count in (0, 7):
        detail = await fails_with(admin_stub.CreateInternship(admin_pb2.CreateInternshipRequest(
            title="T", plans=[plan(n + 1) for n in range(count)]), metadata=admin[2]), 1000)
        assert any(message.startswith("plans:") for message in detail.validation_messages)


# -- exchange rates ------------------------------------------------------------------------------------------------
async def test_exchange_rate_change_is_logged_and_used_by_estimates(admin_stub, admin, channel, cart_engine):
    admin_id, _, metadata = admin
    cart_stub = cart_pb2_grpc.CartServiceStub(channel)
    cart = await cart_stub.CreateCart(cart_pb2.CreateCartRequest(items=[cart_pb2.CartItemInput(plan_id=BACKEND_1M, quantity=1)]))
    async with cart_engine.connect() as conn:
        changes_before = (await conn.execute(select(exchange_rate_changes.c.id).where(exchange_rate_changes.c.currency == "GBP"))).all()
    original = "0.0095"
    try:
        changed = await admin_stub.SetExchangeRate(admin_pb2.SetExchangeRateRequest(currency="GBP", rate="0.02"), metadata=metadata)
        assert (changed.currency, changed.rate) == ("GBP", "0.02") and changed.updated_at.endswith("Z")
        estimate = await cart_stub.EstimateCart(cart_pb2.EstimateCartRequest(cart_token=cart.token, currency="GBP"))
        assert (estimate.exchange_rate, estimate.subtotal) == ("0.02", "29.98")  # 1499 x 0.02
        async with cart_engine.connect() as conn:
            change = (await conn.execute(select(exchange_rate_changes).where(exchange_rate_changes.c.currency == "GBP")
                                         .order_by(exchange_rate_changes.c.id.desc()).limit(1))).one()
        assert (change.old_rate, change.new_rate, change.changed_by) == (Decimal(original), Decimal("0.02"), admin_id)
        row = (await audit_rows(cart_engine, "exchange_rate", "GBP"))[-1]
        assert (row.actor, row.before, row.after["rate"]) == (admin_id, {"rate": "0.00950000"}, "0.02")
    finally:
        restored = await admin_stub.SetExchangeRate(admin_pb2.SetExchangeRateRequest(currency="GBP", rate=original), metadata=metadata)
    assert restored.rate == original
    async with cart_engine.connect() as conn:
        changes_after = (await conn.execute(select(exchange_rate_changes.c.id).where(exchange_rate_changes.c.currency == "GBP"))).all()
    assert len(changes_after) == len(changes_before) + 2


@pytest.mark.parametrize(("currency", "rate", "fields"), [
    ("INR", "1", {"currency"}),
    ("JPY", "0.5", {"currency"}),
    ("EUR", "0", {"rate"}),
    ("EUR", "-0.5", {"rate"}),
    ("EUR", "0.123456789", {"rate"}),
    ("EUR", "1e-3", {"rate"}),
    ("", "", {"currency", "rate"}),
])
async def test_bad_exchange_rates_are_1000(admin_stub, admin, currency, rate, fields):
    detail = await fails_with(admin_stub.SetExchangeRate(admin_pb2.SetExchangeRateRequest(currency=currency, rate=rate),
                                                         metadata=admin[2]), 1000)
    assert {message.split(":")[0] for message in detail.validation_messages} == fields
