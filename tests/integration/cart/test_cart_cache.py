"""The cart cache against real Redis and PostgreSQL: never stale after the client's own change,
ownership on every hit, TTLs, and a dead Redis costing nothing but speed."""

from __future__ import annotations

import datetime
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import pytest
import redis.asyncio as aioredis
from prometheus_client import REGISTRY
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from cart_svc.api.cart import CachedCartApi
from cart_svc.app import registration
from cart_svc.cache import CartCache, cart_key, discounts_key, estimate_key
from cart_svc.commands import ItemChoice, NewCart
from cart_svc.service import CartService
from cart_svc.tables import carts, plumbing
from checkout.v1 import cart_pb2, cart_pb2_grpc, common_pb2
from common.cache import SafeCache, create_redis
from common.clock import utc_now
from common.request_context import Caller
from common.server import Register
from common.settings import Settings
from common.uow import uow_factory
from tests.integration.cart.test_cart_grpc import BACKEND_1M, BACKEND_3M, DESIGN_1M, _coupon, fails_with, new_cart
from tests.support.grpc_servers import serving
from tests.support.tokens import bearer, new_user

CACHE_OPERATIONS = ("get", "set", "delete", "invalidate")


class Clock:
    """utc_now, shifted by tests that need to be in the future."""

    def __init__(self) -> None:
        self.shift = datetime.timedelta(0)

    def __call__(self) -> datetime.datetime:
        return utc_now() + self.shift


def cart_service(engine: AsyncEngine, settings: Settings, **options: Any) -> CartService:
    return CartService(uow_factory(engine, plumbing), settings, **options)


def cart_only(cart_engine, settings: Settings, cache: CartCache, clock: Callable[[], datetime.datetime]) -> Register:
    def register(server: grpc.aio.Server) -> list[str]:
        service = cart_service(cart_engine, settings, clock=clock, cache=cache)
        cart_pb2_grpc.add_CartServiceServicer_to_server(CachedCartApi(service, cache), server)
        return [cart_pb2.DESCRIPTOR.services_by_name["CartService"].full_name]

    return register


@pytest.fixture
async def redis_client(settings) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(settings.redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def cache(settings, clock) -> AsyncIterator[CartCache]:
    cache = CartCache(SafeCache(create_redis(settings)), settings, clock)
    yield cache
    await cache.close()


@pytest.fixture
async def stub(settings, cart_engine, cache, clock) -> AsyncIterator[cart_pb2_grpc.CartServiceStub]:
    async with serving(settings, cart_only(cart_engine, settings, cache, clock)) as channel:
        yield cart_pb2_grpc.CartServiceStub(channel)


def dead_redis_settings(settings: Settings) -> Settings:
    with socket.socket() as probe:  # a port that was free a moment ago: nobody listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return settings.replace(redis_url=f"redis://127.0.0.1:{port}/0")


def cache_errors() -> float:
    return sum(REGISTRY.get_sample_value("checkout_cache_errors_total", {"operation": op}) or 0.0 for op in CACHE_OPERATIONS)


async def cached_version(redis_client: aioredis.Redis, token: str) -> int | None:
    raw = await redis_client.get(cart_key(token))
    return None if raw is None else int(raw.split(b"|", 1)[0])


async def test_reads_after_own_changes_are_never_stale(stub, cart_engine, redis_client):
    code = await _coupon(cart_engine)
    cart = await stub.CreateCart(new_cart())
    assert await cached_version(redis_client, cart.token) == 1  # written through on create
    assert await stub.GetCart(cart_pb2.GetCartRequest(token=cart.token)) == cart
    changes = [
        lambda c: stub.AddItem(cart_pb2.AddItemRequest(token=c.token, plan_id=DESIGN_1M, quantity=2)),
        lambda c: stub.SwitchPlan(cart_pb2.SwitchPlanRequest(token=c.token, plan_id=BACKEND_3M,
                                                             item_id=next(i.item_id for i in c.items if i.plan_id == BACKEND_1M))),
        lambda c: stub.ApplyCoupon(cart_pb2.ApplyCouponRequest(token=c.token, code=code)),
        lambda c: stub.RemoveItem(cart_pb2.RemoveItemRequest(token=c.token, item_id=next(i.item_id for i in c.items if i.plan_id == DESIGN_1M))),
        lambda c: stub.RemoveCoupon(cart_pb2.RemoveCouponRequest(token=c.token)),
    ]
    for version, change in enumerate(changes, start=2):
        cart = await change(cart)
        assert await cached_version(redis_client, cart.token) == version
        assert await stub.GetCart(cart_pb2.GetCartRequest(token=cart.token)) == cart
    assert [item.plan_id for item in cart.items] == [BACKEND_3M] and cart.discount_code == ""


async def test_coupon_shows_on_the_next_read_even_with_a_warm_cache(stub, cart_engine):
    code = await _coupon(cart_engine)
    cart = await stub.CreateCart(new_cart())
    await stub.GetCart(cart_pb2.GetCartRequest(token=cart.token))
    await stub.ListDiscounts(cart_pb2.ListDiscountsRequest(token=cart.token))
    await stub.ApplyCoupon(cart_pb2.ApplyCouponRequest(token=cart.token, code=code))
    fetched = await stub.GetCart(cart_pb2.GetCartRequest(token=cart.token))
    assert fetched.discount_code == code and fetched.discount_amount == "149.90"
    estimate = await stub.EstimateCart(cart_pb2.EstimateCartRequest(cart_token=cart.token))
    assert [d.code for d in estimate.discounts] == [code]


async def test_hits_come_from_redis_and_match_the_uncached_service(settings, cart_engine, cache, stub, redis_client):
    cart = await stub.CreateCart(new_cart(device_id="before"))
    await stub.EstimateCart(cart_pb2.EstimateCartRequest(cart_token=cart.token, billing=common_pb2.Billing(country="IN", state="KA")))
    await stub.ListDiscounts(cart_pb2.ListDiscountsRequest(token=cart.token))
    async with serving(settings, registration(cart_engine, settings)) as channel:  # no cache
        plain = cart_pb2_grpc.CartServiceStub(channel)
        uncached = await plain.GetCart(cart_pb2.GetCartRequest(token=cart.token))
        uncached_estimate = await plain.EstimateCart(cart_pb2.EstimateCartRequest(
            cart_token=cart.token, billing=common_pb2.Billing(country="IN", state="KA")))
        uncached_discounts = await plain.ListDiscounts(cart_pb2.ListDiscountsRequest(token=cart.token))
    # changed behind the cache's back (no version bump): a hit still shows "before"
    async with cart_engine.begin() as conn:
        await conn.execute(update(carts).where(carts.c.token == cart.token).values(device_id="after"))
    hit = await stub.GetCart(cart_pb2.GetCartRequest(token=cart.token.upper()))  # any spelling, one key
    assert hit.device_id == "before"
    assert hit.SerializeToString() == uncached.SerializeToString()
    hit_estimate = await stub.EstimateCart(cart_pb2.EstimateCartRequest(cart_token=cart.token, billing=common_pb2.Billing(country="IN", state="KA")))
    hit_estimate.expires_at = uncached_estimate.expires_at  # a cached quote keeps its own validity
    assert hit_estimate.SerializeToString() == uncached_estimate.SerializeToString()
    hit_discounts = await stub.ListDiscounts(cart_pb2.ListDiscountsRequest(token=cart.token))
    assert hit_discounts.SerializeToString() == uncached_discounts.SerializeToString()


async def test_a_hit_still_checks_ownership(stub, settings, redis_client):
    owner, stranger = new_user(), new_user()
    cart = await stub.CreateCart(new_cart(), metadata=bearer(settings, owner))
    assert await cached_version(redis_client, cart.token) == 1
    assert await stub.GetCart(cart_pb2.GetCartRequest(token=cart.token), metadata=bearer(settings, owner)) == cart
    estimate = cart_pb2.EstimateCartRequest(cart_token=cart.token)
    await stub.EstimateCart(estimate, metadata=bearer(settings, owner))
    await stub.ListDiscounts(cart_pb2.ListDiscountsRequest(token=cart.token), metadata=bearer(settings, owner))
    for metadata, code in ((None, 1101), (bearer(settings, stranger), 1102)):
        await fails_with(stub.GetCart(cart_pb2.GetCartRequest(token=cart.token), metadata=metadata), code)
        await fails_with(stub.EstimateCart(estimate, metadata=metadata), code)
        await fails_with(stub.ListDiscounts(cart_pb2.ListDiscountsRequest(token=cart.token), metadata=metadata), code)
    await fails_with(stub.GetCart(cart_pb2.GetCartRequest(token="not-a-uuid")), 1000)


async def test_estimates_are_cached_per_billing(stub, redis_client):
    cart = await stub.CreateCart(new_cart(plan_id=DESIGN_1M))
    places = {("IN", "KA"): "1178.82", ("IN", "MH"): "1178.82", ("US", ""): "999.00"}
    taxes = {}
    for _ in range(2):  # second round: hits
        for (country, state), total in places.items():
            estimate = await stub.EstimateCart(cart_pb2.EstimateCartRequest(
                cart_token=cart.token, billing=common_pb2.Billing(country=country, state=state)))
            assert estimate.total == total
            taxes[country, state] = [t.name for t in estimate.taxes]
            assert await redis_client.exists(estimate_key(cart.token, country, state, ""))
    assert taxes == {("IN", "KA"): ["CGST", "SGST"], ("IN", "MH"): ["IGST"], ("US", ""): []}
    usd = await stub.EstimateCart(cart_pb2.EstimateCartRequest(cart_token=cart.token, currency="USD"))
    assert usd.currency == "USD" and await redis_client.exists(estimate_key(cart.token, "", "", "USD"))


async def test_an_estimate_of_an_older_version_is_a_miss_and_the_new_one_replaces_it(stub, redis_client):
    cart = await stub.CreateCart(new_cart())
    key = estimate_key(cart.token, "", "", "")
    first = await stub.EstimateCart(cart_pb2.EstimateCartRequest(cart_token=cart.token))
    assert (await redis_client.get(key)).startswith(b"1|")
    await stub.AddItem(cart_pb2.AddItemRequest(token=cart.token, plan_id=DESIGN_1M, quantity=1))
    second = await stub.EstimateCart(cart_pb2.EstimateCartRequest(cart_token=cart.token))
    assert second.total != first.total
    assert (await redis_client.get(key)).startswith(b"2|")
    assert await stub.EstimateCart(cart_pb2.EstimateCartRequest(cart_token=cart.token)) == second  # a hit now


async def test_ttls(stub, settings, redis_client):
    cart = await stub.CreateCart(new_cart())
    await stub.EstimateCart(cart_pb2.EstimateCartRequest(cart_token=cart.token))
    await stub.ListDiscounts(cart_pb2.ListDiscountsRequest(token=cart.token))
    cart_ttl = await redis_client.ttl(cart_key(cart.token))
    # the cached cart shows prices, so it lives min(CART_TTL, until expires_at, PRICING_TTL)
    assert settings.pricing_ttl - 5 <= cart_ttl <= min(settings.cart_ttl, settings.pricing_ttl)
    assert settings.pricing_ttl - 5 <= await redis_client.ttl(estimate_key(cart.token, "", "", "")) <= settings.pricing_ttl
    assert settings.discount_ttl - 5 <= await redis_client.ttl(discounts_key(cart.token, 1)) <= settings.discount_ttl


async def test_cart_ttl_follows_cart_ttl_and_expiry(settings, cart_engine, redis_client):
    long_prices = settings.replace(pricing_ttl=10 * 24 * 3600)
    cache = CartCache(SafeCache(create_redis(settings)), long_prices)
    service = cart_service(cart_engine, long_prices, cache=cache)
    view = await service.create_cart(Caller(), NewCart(items=(ItemChoice(plan_id=BACKEND_1M),)))
    token = view.cart.token
    assert settings.cart_ttl - 5 <= await redis_client.ttl(cart_key(token)) <= settings.cart_ttl
    async with cart_engine.begin() as conn:  # due in 30 s
        await conn.execute(update(carts).where(carts.c.token == token)
                           .values(expires_at=utc_now() + datetime.timedelta(seconds=30), version=carts.c.version + 1))
    await redis_client.delete(cart_key(token))
    await service.get_cart(Caller(), token)
    assert 0 < await redis_client.ttl(cart_key(token)) <= 30
    await cache.close()


async def test_never_served_at_or_after_expiry(settings, cart_engine, clock):
    long_prices = settings.replace(pricing_ttl=10 * 24 * 3600)
    cache = CartCache(SafeCache(create_redis(settings)), long_prices, clock)
    async with serving(settings, cart_only(cart_engine, long_prices, cache, clock)) as channel:
        stub = cart_pb2_grpc.CartServiceStub(channel)
        cart = await stub.CreateCart(new_cart())
        assert (await stub.GetCart(cart_pb2.GetCartRequest(token=cart.token))).status == "active"
        clock.shift = datetime.timedelta(seconds=settings.cart_ttl + 1)
        assert (await stub.GetCart(cart_pb2.GetCartRequest(token=cart.token))).status == "expired"
        await fails_with(stub.AddItem(cart_pb2.AddItemRequest(token=cart.token, plan_id=DESIGN_1M, quantity=1)), 1002)
    await cache.close()


async def test_a_slow_reader_cannot_put_back_an_older_version(settings, cart_engine, cache, redis_client):
    service = cart_service(cart_engine, settings, cache=cache)
    created = await service.create_cart(Caller(), NewCart(items=(ItemChoice(plan_id=BACKEND_1M),)))
    token = created.cart.token
    old = await cart_service(cart_engine, settings).get_cart(Caller(), token)  # read v1 from PostgreSQL ...
    await service.add_item(Caller(), token, ItemChoice(plan_id=DESIGN_1M))  # ... v2 commits and is cached ...
    await cache.cart_read(old)  # ... then the slow reader tries to fill with v1
    assert await cached_version(redis_client, token) == 2
    await cache.carts_closed([(token, 3)])  # a tombstone (v3 committed without a view) ...
    await cache.cart_read(await cart_service(cart_engine, settings).get_cart(Caller(), token))  # ... v2 read: refused
    assert await redis_client.get(cart_key(token)) == b"3|"
    assert await cache.head(token) is None


async def test_login_forgets_the_merged_away_cart(stub, settings, redis_client):
    user = new_user()
    mine = await stub.CreateCart(new_cart(), metadata=bearer(settings, user))
    assert (await stub.GetCart(cart_pb2.GetCartRequest(token=mine.token), metadata=bearer(settings, user))).status == "active"
    guest = await stub.CreateCart(new_cart(plan_id=DESIGN_1M))
    await stub.GetCart(cart_pb2.GetCartRequest(token=guest.token))
    merged = await stub.LoginToCart(cart_pb2.LoginToCartRequest(token=guest.token), metadata=bearer(settings, user))
    assert merged.user_id == user and len(merged.items) == 2
    assert await stub.GetCart(cart_pb2.GetCartRequest(token=guest.token), metadata=bearer(settings, user)) == merged
    await fails_with(stub.GetCart(cart_pb2.GetCartRequest(token=guest.token)), 1101)  # the cached owner changed too
    old = await stub.GetCart(cart_pb2.GetCartRequest(token=mine.token), metadata=bearer(settings, user))
    assert old.status == "expired"
    assert await redis_client.get(cart_key(mine.token)) == b"2|"


async def test_whole_flow_works_with_redis_down(settings, cart_engine, clock):
    down = dead_redis_settings(settings)
    cache = CartCache(SafeCache(create_redis(down)), settings, clock)
    before = cache_errors()
    user = new_user()
    code = await _coupon(cart_engine)
    async with serving(settings, cart_only(cart_engine, settings, cache, clock)) as channel:
        stub = cart_pb2_grpc.CartServiceStub(channel)
        cart = await stub.CreateCart(new_cart())
        assert await stub.GetCart(cart_pb2.GetCartRequest(token=cart.token)) == cart
        cart = await stub.AddItem(cart_pb2.AddItemRequest(token=cart.token, plan_id=DESIGN_1M, quantity=1))
        assert await stub.GetCart(cart_pb2.GetCartRequest(token=cart.token)) == cart
        backend = next(i.item_id for i in cart.items if i.plan_id == BACKEND_1M)
        cart = await stub.SwitchPlan(cart_pb2.SwitchPlanRequest(token=cart.token, plan_id=BACKEND_3M, item_id=backend))
        cart = await stub.ApplyCoupon(cart_pb2.ApplyCouponRequest(token=cart.token, code=code))
        assert (await stub.GetCart(cart_pb2.GetCartRequest(token=cart.token))).discount_code == code
        estimate = await stub.EstimateCart(cart_pb2.EstimateCartRequest(cart_token=cart.token, billing=common_pb2.Billing(country="IN", state="KA")))
        assert estimate.subtotal == cart.subtotal and [t.name for t in estimate.taxes] == ["CGST", "SGST"]
        assert any(d.code == code for d in (await stub.ListDiscounts(cart_pb2.ListDiscountsRequest(token=cart.token))).discounts)
        cart = await stub.RemoveCoupon(cart_pb2.RemoveCouponRequest(token=cart.token))
        cart = await stub.RemoveItem(cart_pb2.RemoveItemRequest(token=cart.token, item_id=cart.items[0].item_id))
        merged = await stub.LoginToCart(cart_pb2.LoginToCartRequest(token=cart.token), metadata=bearer(settings, user))
        assert merged.user_id == user
        assert await stub.GetCart(cart_pb2.GetCartRequest(token=cart.token), metadata=bearer(settings, user)) == merged
        await fails_with(stub.GetCart(cart_pb2.GetCartRequest(token=cart.token)), 1101)
        await fails_with(stub.GetCart(cart_pb2.GetCartRequest(token=str(uuid.uuid4()))), 1001)
    assert cache_errors() > before
    await cache.close()


class BrokenRedis:
    def __init__(self) -> None:
        self.calls = 0

    async def get(self, key: str) -> bytes:
        self.calls += 1
        raise RedisConnectionError("connection refused")


async def test_breaker_skips_redis_for_a_moment_and_logs_once(caplog):
    now = [100.0]
    broken = BrokenRedis()
    safe = SafeCache(broken, cooldown_seconds=1.0, clock=lambda: now[0])  # type: ignore[arg-type]
    before = REGISTRY.get_sample_value("checkout_cache_errors_total", {"operation": "get"}) or 0.0
    with caplog.at_level("INFO", logger="common.cache"):
        assert [await safe.get("k") for _ in range(5)] == [None] * 5
        assert broken.calls == 1  # the other four skipped Redis
        now[0] += 1.5
        assert await safe.get("k") is None and broken.calls == 2  # one probe after the pause
    assert REGISTRY.get_sample_value("checkout_cache_errors_total", {"operation": "get"}) == before + 6
    assert len([r for r in caplog.records if r.name == "common.cache"]) == 1


def lookups() -> dict[tuple[str, str], float]:
    return {(cache, result): REGISTRY.get_sample_value("checkout_cache_lookups_total", {"cache": cache, "result": result}) or 0.0
            for cache in ("cart", "estimate", "discounts") for result in ("hit", "miss")}


async def test_hits_and_misses_are_counted_per_entry_kind(stub, redis_client):
    cart = await stub.CreateCart(new_cart())  # written through: the cart entry exists
    await redis_client.delete(cart_key(cart.token))
    before = lookups()
    await stub.GetCart(cart_pb2.GetCartRequest(token=cart.token))  # cart miss, then filled
    await stub.GetCart(cart_pb2.GetCartRequest(token=cart.token))  # cart hit
    for _ in range(2):  # cart hit each time; the estimate and the listing miss first, then hit
        await stub.EstimateCart(cart_pb2.EstimateCartRequest(cart_token=cart.token))
        await stub.ListDiscounts(cart_pb2.ListDiscountsRequest(token=cart.token))
    after = lookups()
    assert {key: after[key] - before[key] for key in after} == {
        ("cart", "hit"): 5, ("cart", "miss"): 1, ("estimate", "hit"): 1, ("estimate", "miss"): 1,
        ("discounts", "hit"): 1, ("discounts", "miss"): 1}
