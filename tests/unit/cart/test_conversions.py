"""ConvertCart and ReleaseCart as use cases, with the fake unit of work and an in-memory repository:
what they decide, which events and audit rows they leave, and that a refusal leaves none."""

from __future__ import annotations

import datetime
import uuid
from decimal import Decimal

import pytest

from cart_svc.commands import BillingChoice, ConvertCart, ReleaseCart
from cart_svc.conversions import ConversionService, Released
from cart_svc.domain.cart import Cart, PlanRef
from cart_svc.domain.coupons import Coupon, CouponReason
from cart_svc.domain.sales import Sale
from common.errors import CheckoutError, ErrorCode
from common.settings import load_settings
from tests.support.fake_uow import FakeUnitOfWork
from tests.unit.cart.memory import MemoryRepository

NOW = datetime.datetime(2026, 12, 1, 10, 0, tzinfo=datetime.UTC)
TTL = datetime.timedelta(hours=24)
SETTINGS = load_settings({"CART_TTL": "86400", "SELLER_STATE": "KA"})
INTERNSHIP = str(uuid.uuid4())
PLAN = PlanRef(str(uuid.uuid4()), INTERNSHIP, "Backend Engineering", 3, "month", Decimal("1000.00"))


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime.datetime:
        return self.now


@pytest.fixture
def repo() -> MemoryRepository:
    repo = MemoryRepository()
    repo.plans[PLAN.plan_id] = PLAN
    return repo


@pytest.fixture
def uow() -> FakeUnitOfWork:
    return FakeUnitOfWork()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def service(repo: MemoryRepository, uow: FakeUnitOfWork, clock: Clock) -> ConversionService:
    return ConversionService(lambda: uow, SETTINGS, repository=repo, clock=clock)  # type: ignore[arg-type, return-value]


def a_cart(repo: MemoryRepository, *, user_id: str | None = None, quantity: int = 2, coupon: str | None = None,
           sale: str | None = None, lines: bool = True) -> Cart:
    cart = Cart.new(user_id=user_id, currency="INR", now=NOW - datetime.timedelta(minutes=5), ttl=TTL,
                    sale_slug=sale)
    if lines:
        cart.add(PLAN, quantity, NOW - datetime.timedelta(minutes=5), TTL)
    cart.coupon_code = coupon
    repo.carts[cart.token] = cart
    return cart


def a_coupon(repo: MemoryRepository, **fields: object) -> str:
    code = f"C{uuid.uuid4().hex[:8].upper()}"
    repo.coupons[code] = Coupon(code=code, kind="percent", value=Decimal("10"), **fields)  # type: ignore[arg-type]
    return code


def convert(cart: Cart, user: str, order: str | None = None, **billing: str) -> ConvertCart:
    return ConvertCart(cart.token, order or str(uuid.uuid4()), user, BillingChoice(**billing))


async def refused(call: object, code: ErrorCode) -> CheckoutError:
    with pytest.raises(CheckoutError) as caught:
        await call  # type: ignore[misc]
    assert caught.value.code is code, caught.value
    return caught.value


def nothing_recorded(uow: FakeUnitOfWork, repo: MemoryRepository) -> None:
    assert not uow.committed and uow.published == [] and uow.audited == [] and repo.writes == 0


# -- ConvertCart ------------------------------------------------------------------------------------
async def test_convert_prices_redeems_marks_and_records_one_event(service, repo, uow):
    user = str(uuid.uuid4())
    code = a_coupon(repo, max_redemptions=5)
    repo.sales["spring"] = Sale("spring", "percent", Decimal("20"))
    cart = a_cart(repo, coupon=code, sale="spring")
    order = str(uuid.uuid4())

    snapshot = await service.convert(convert(cart, user, order, country="IN", state="KA"))

    # 1000 - 20% sale = 800 x 2 = 1600; coupon 10% = 160; taxable 1440; CGST 9% + SGST 9% = 129.60 each
    assert (snapshot.order_token, snapshot.cart_token, snapshot.user_id, snapshot.currency) == (
        order, cart.token, user, "INR")
    assert [(line.line_no, line.plan_id, line.title, line.quantity, line.unit_price, line.unit_price_inr,
             line.line_total, line.period_value, line.period_unit) for line in snapshot.lines] == [
        (1, PLAN.plan_id, PLAN.title, 2, Decimal("800.00"), Decimal("800.00"), Decimal("1600.00"), 3, "month")]
    assert (snapshot.subtotal, snapshot.discount_code, snapshot.discount_amount) == (
        Decimal("1600.00"), code, Decimal("160.00"))
    assert [(t.name, t.amount) for t in snapshot.taxes] == [("CGST", Decimal("129.60")), ("SGST", Decimal("129.60"))]
    assert (snapshot.tax_amount, snapshot.total, snapshot.exchange_rate) == (
        Decimal("259.20"), Decimal("1699.20"), Decimal(1))
    stored = repo.carts[cart.token]
    assert (stored.status, stored.user_id, stored.order_token, stored.version) == ("converted", user, order, 2)
    assert repo.coupons[code].redeemed_count == 1 and repo.redemptions[order].user_id == user
    assert repo.conversions[order].snapshot == snapshot
    assert uow.committed
    assert [(e.subject, e.aggregate_id) for e in uow.published] == [("checkout.cart.converted", cart.token)]
    assert uow.published[0].payload["order_token"] == order and uow.published[0].payload["status"] == "converted"
    assert uow.published[0].payload["total"] == "1699.20"
    assert sorted((a.entity_type, a.action) for a in uow.audited) == [("cart", "converted"), ("coupon", "redeem")]


async def test_a_repeat_for_the_same_order_answers_the_kept_snapshot_and_changes_nothing(service, repo, uow, clock):
    user = str(uuid.uuid4())
    cart = a_cart(repo, coupon=a_coupon(repo))
    order = str(uuid.uuid4())
    first = await service.convert(convert(cart, user, order))
    writes, events, audits = repo.writes, len(uow.published), len(uow.audited)
    repo.plans[PLAN.plan_id] = PlanRef(PLAN.plan_id, INTERNSHIP, PLAN.title, 3, "month", Decimal("5000.00"))
    clock.now += datetime.timedelta(days=3)  # the cart's expiry has long passed too

    again = await service.convert(convert(cart, user, order.upper()))

    assert again == first
    assert (repo.writes, len(uow.published), len(uow.audited)) == (writes, events, audits)


async def test_a_double_submit_with_another_order_token_answers_the_first_order(service, repo, uow):
    user = str(uuid.uuid4())
    cart = a_cart(repo)
    first = await service.convert(convert(cart, user))
    writes = repo.writes

    second = await service.convert(convert(cart, user))

    assert second == first and second.order_token == first.order_token
    assert repo.writes == writes and len(uow.published) == 1


async def test_another_user_is_1102_and_a_legacy_converted_cart_is_1003(service, repo, uow):
    owner = str(uuid.uuid4())
    owned = a_cart(repo, user_id=owner)
    await refused(service.convert(convert(owned, str(uuid.uuid4()))), ErrorCode.NOT_ALLOWED)
    converted = a_cart(repo)
    await service.convert(convert(converted, owner))
    await refused(service.convert(convert(converted, str(uuid.uuid4()))), ErrorCode.NOT_ALLOWED)
    legacy = a_cart(repo)
    legacy.status = "converted"  # converted before conversions were kept: nobody's snapshot to answer
    writes, events = repo.writes, len(uow.published)
    await refused(service.convert(convert(legacy, owner)), ErrorCode.CART_CONVERTED)
    assert (repo.writes, len(uow.published), uow.committed) == (writes, events, False)


@pytest.mark.parametrize(("case", "code"), [
    ("unknown cart", ErrorCode.CART_NOT_FOUND),
    ("expired", ErrorCode.CART_EXPIRED),
    ("empty", ErrorCode.CART_EMPTY),
    ("bad ids and billing", ErrorCode.VALIDATION_FAILED),
    ("coupon expired", ErrorCode.INVALID_COUPON),
    ("coupon limit reached", ErrorCode.INVALID_COUPON),
])
async def test_refusals_change_nothing(service, repo, uow, clock, case, code):
    user = str(uuid.uuid4())
    cart = a_cart(repo, lines=case != "empty")
    request = convert(cart, user)
    if case == "unknown cart":
        request = ConvertCart(str(uuid.uuid4()), str(uuid.uuid4()), user)
    elif case == "expired":
        clock.now = cart.expires_at
    elif case == "bad ids and billing":
        request = ConvertCart("nope", "", "x", BillingChoice("IN", "ZZ"))
    elif case == "coupon expired":
        cart.coupon_code = a_coupon(repo, ends_at=NOW - datetime.timedelta(seconds=1))
    elif case == "coupon limit reached":
        cart.coupon_code = a_coupon(repo, max_redemptions=1, redeemed_count=1)

    error = await refused(service.convert(request), code)

    nothing_recorded(uow, repo)
    assert repo.carts[cart.token].status == ("active" if case != "empty" else "draft")
    assert repo.conversions == {} and repo.redemptions == {}
    if case == "bad ids and billing":
        assert {m.split(":")[0] for m in error.validation_messages} == {
            "cart_token", "order_token", "user_id", "billing.state"}
    if case == "coupon expired":
        assert error.validation_messages == [f"code: {CouponReason.EXPIRED}"]
    if case == "coupon limit reached":
        assert error.validation_messages == [f"code: {CouponReason.LIMIT_REACHED}"]


# -- ReleaseCart -------------------------------------------------------------------------------------
async def test_release_gives_back_the_coupon_and_reopens_the_cart_once(service, repo, uow, clock):
    user = str(uuid.uuid4())
    code = a_coupon(repo, max_redemptions=1)
    cart = a_cart(repo, coupon=code)
    order = str(uuid.uuid4())
    await service.convert(convert(cart, user, order))
    clock.now += datetime.timedelta(hours=30)  # past the cart's old expiry
    uow.published, uow.audited = [], []

    done = await service.release(ReleaseCart(order, reopen_cart=True, reason="abandoned"), actor="order_svc")

    assert done == Released(coupon_released=True, cart_reopened=True)
    stored = repo.carts[cart.token]
    assert (stored.status, stored.order_token, stored.user_id) == ("active", None, user)
    assert stored.expires_at == clock.now + TTL and stored.updated_at == clock.now
    assert repo.coupons[code].redeemed_count == 0 and repo.redemptions[order].status == "released"
    assert repo.conversions[order].status == "released"
    assert [(e.subject, e.payload["order_token"], e.payload["status"]) for e in uow.published] == [
        ("checkout.cart.reopened", order, "active")]
    assert sorted((a.entity_type, a.action, a.actor) for a in uow.audited) == [
        ("cart", "reopened", "order_svc"), ("coupon", "release", "order_svc")]

    writes = repo.writes
    again = await service.release(ReleaseCart(order, reopen_cart=True, reason="abandoned"), actor="order_svc")
    assert again == Released(coupon_released=False, cart_reopened=False)
    assert repo.writes == writes and len(uow.published) == 1
    await refused(service.convert(convert(cart, user, order)), ErrorCode.VALIDATION_FAILED)  # a released order
    reconverted = await service.convert(convert(cart, user))  # a new order may take the cart and the coupon
    assert reconverted.discount_code == code and repo.coupons[code].redeemed_count == 1


async def test_release_without_reopening_keeps_the_cart_converted(service, repo, uow):
    user = str(uuid.uuid4())
    code = a_coupon(repo)
    cart = a_cart(repo, coupon=code)
    order = str(uuid.uuid4())
    await service.convert(convert(cart, user, order))

    done = await service.release(ReleaseCart(order, reopen_cart=False, reason="expired"), actor="cart-orders")

    assert done == Released(coupon_released=True, cart_reopened=False)
    assert repo.carts[cart.token].status == "converted" and repo.conversions[order].status == "converted"
    assert [e.subject for e in uow.published] == ["checkout.cart.converted"]  # nothing new published
    later = await service.release(ReleaseCart(order, reopen_cart=True, reason="abandoned"), actor="order_svc")
    assert later == Released(coupon_released=False, cart_reopened=True)


async def test_release_of_an_order_that_held_nothing_is_a_no_op(service, repo, uow):
    done = await service.release(ReleaseCart(str(uuid.uuid4()), reopen_cart=True, reason="cancelled"), actor="x")
    assert done == Released(False, False)
    assert uow.published == [] and uow.audited == [] and repo.writes == 0
    await refused(service.release(ReleaseCart("not-a-token", reason="\x00"), actor="x"), ErrorCode.VALIDATION_FAILED)
