"""The cart sweeper against real PostgreSQL (and Redis): due carts expire once, whoever sweeps; idle
carts are reported abandoned once, whatever their expiry."""

from __future__ import annotations

import asyncio
import datetime
import os
import subprocess
import sys
from collections import Counter

import pytest
import redis.asyncio as aioredis
from sqlalchemy import select, update

from cart_svc.cache import CartCache, cart_key
from cart_svc.commands import ItemChoice, NewCart
from cart_svc.repository import Repository
from cart_svc.service import CartService
from cart_svc.tables import audit_log, carts, outbox, plumbing
from cart_svc.workers.sweeper import CartSweeper, sweeper_worker
from checkout.v1 import cart_pb2, cart_pb2_grpc
from common.cache import SafeCache, create_redis
from common.request_context import Caller
from common.settings import Settings
from common.uow import uow_factory
from tests.conftest import ROOT
from tests.integration.cart.test_cart_cache import cart_only
from tests.integration.cart.test_cart_grpc import BACKEND_1M, DESIGN_1M, fails_with, new_cart
from tests.support.grpc_servers import serving

LONG_AGO = datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC)


@pytest.fixture
async def cache(settings):
    cache = CartCache(SafeCache(create_redis(settings)), settings)
    yield cache
    await cache.close()


def sweeper(engine, settings: Settings, cache: CartCache | None = None, batch: int = 500) -> CartSweeper:
    return CartSweeper(uow_factory(engine, plumbing), settings.replace(cart_sweep_batch=batch), cache=cache)


async def sweep_due(engine, settings: Settings, cache: CartCache | None, batch: int = 500) -> list[str]:
    """One sweep: the carts it expired."""
    return (await sweeper(engine, settings, cache, batch).sweep()).expired


async def new_carts(cart_engine, settings, count: int) -> list[str]:
    service = CartService(uow_factory(cart_engine, plumbing), settings)
    return [(await service.create_cart(Caller(), NewCart(items=(ItemChoice(plan_id=BACKEND_1M),)))).cart.token for _ in range(count)]


async def make_due(cart_engine, tokens: list[str], *, oldest_first: bool = True) -> None:
    """Due long ago, so these sort before any other test's due carts."""
    async with cart_engine.begin() as conn:
        for index, token in enumerate(tokens):
            due = LONG_AGO + datetime.timedelta(seconds=index) if oldest_first else datetime.datetime.now(datetime.UTC)
            await conn.execute(update(carts).where(carts.c.token == token).values(expires_at=due))


async def rows(cart_engine, tokens: list[str]) -> dict[str, tuple[str, int]]:
    async with cart_engine.connect() as conn:
        result = await conn.execute(select(carts.c.token, carts.c.status, carts.c.version).where(carts.c.token.in_(tokens)))
        return {str(token): (status, version) for token, status, version in result}


async def test_due_carts_expire_and_others_are_untouched(cart_engine, settings, cache):
    due, fresh, converted = await new_carts(cart_engine, settings, 3), await new_carts(cart_engine, settings, 2), await new_carts(cart_engine, settings, 1)
    await make_due(cart_engine, due + converted)
    async with cart_engine.begin() as conn:
        await conn.execute(update(carts).where(carts.c.token == converted[0]).values(status="converted"))
    swept = await sweep_due(cart_engine, settings, cache)
    assert set(due) <= set(swept) and not set(fresh + converted) & set(swept)
    states = await rows(cart_engine, due + fresh + converted)
    assert all(states[token] == ("expired", 2) for token in due)
    assert all(states[token] == ("active", 1) for token in fresh)
    assert states[converted[0]] == ("converted", 1)
    assert not set(due) & set(await sweep_due(cart_engine, settings, cache))  # nothing is swept twice


async def test_two_sweepers_at_once_sweep_each_cart_once(cart_engine, settings):
    tokens = await new_carts(cart_engine, settings, 60)
    await make_due(cart_engine, tokens)
    first, second = await asyncio.wait_for(asyncio.gather(sweep_due(cart_engine, settings, None, 7), sweep_due(cart_engine, settings, None, 7)), timeout=30)
    counts = Counter(first + second)
    assert all(counts[token] == 1 for token in tokens)
    assert max(counts.values()) == 1
    assert all(state == ("expired", 2) for state in (await rows(cart_engine, tokens)).values())


async def test_a_sweeper_skips_rows_another_holds_instead_of_waiting(cart_engine, settings):
    tokens = await new_carts(cart_engine, settings, 50)
    await make_due(cart_engine, tokens)
    async with cart_engine.connect() as held:
        transaction = await held.begin()
        taken = [token for token, _ in await Repository().expire_due(held, 20)]
        assert set(taken) == set(tokens[:20])  # the oldest due first (RETURNING order is unspecified)
        others = await asyncio.wait_for(sweep_due(cart_engine, settings, None, 8), timeout=10)  # would hang on a plain FOR UPDATE
        await transaction.commit()
    assert not set(taken) & set(others) and set(tokens[20:]) <= set(others)
    assert all(state == ("expired", 2) for state in (await rows(cart_engine, tokens)).values())


async def test_after_a_sweep_reads_show_expired_and_changes_give_1002(cart_engine, settings, cache):
    redis_client = aioredis.Redis.from_url(settings.redis_url)
    async with serving(settings, cart_only(cart_engine, settings, cache, cache._clock)) as channel:
        stub = cart_pb2_grpc.CartServiceStub(channel)
        cart = await stub.CreateCart(new_cart())
        assert (await stub.GetCart(cart_pb2.GetCartRequest(token=cart.token))).status == "active"  # cached
        await make_due(cart_engine, [cart.token])
        assert cart.token in await sweep_due(cart_engine, settings, cache)
        assert await redis_client.get(cart_key(cart.token)) == b"2|"
        swept = await stub.GetCart(cart_pb2.GetCartRequest(token=cart.token))
        assert swept.status == "expired"
        await fails_with(stub.AddItem(cart_pb2.AddItemRequest(token=cart.token, plan_id=DESIGN_1M, quantity=1)), 1002)
        await fails_with(stub.ApplyCoupon(cart_pb2.ApplyCouponRequest(token=cart.token, code="ANYCODE")), 1002)
    await redis_client.aclose()


async def test_background_sweeper_runs_in_the_service_process(cart_engine, settings, cache):
    worker = sweeper_worker(sweeper(cart_engine, settings, cache), settings.replace(cart_sweep_interval=0.05))
    assert worker is not None
    worker.start()
    try:
        tokens = await new_carts(cart_engine, settings, 2)
        await make_due(cart_engine, tokens, oldest_first=False)
        for _ in range(100):
            if all(status == "expired" for status, _ in (await rows(cart_engine, tokens)).values()):
                break
            await asyncio.sleep(0.05)
        assert all(status == "expired" for status, _ in (await rows(cart_engine, tokens)).values())
    finally:
        await worker.stop()
    assert worker.task is not None and worker.task.done() and not worker.task.cancelled()


async def test_command_line_once(cart_engine, settings):
    tokens = await new_carts(cart_engine, settings, 2)
    await make_due(cart_engine, tokens)
    env = {**os.environ, "DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url}
    done = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "cart_svc.workers.sweeper", "--once"],
                                   cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert all(state == ("expired", 2) for state in (await rows(cart_engine, tokens)).values())


# -- abandoned carts --------------------------------------------------------------------------------------
async def abandoned_events(engine, token: str) -> list[dict]:
    async with engine.connect() as conn:
        return list((await conn.execute(select(outbox.c.payload).where(
            outbox.c.aggregate_id == token, outbox.c.subject == "checkout.cart.abandoned"))).scalars())


async def test_an_idle_cart_is_reported_abandoned_once_whatever_its_expiry(cart_engine, settings):
    idle, idle_and_due, recent = await new_carts(cart_engine, settings, 3)
    empty = (await CartService(uow_factory(cart_engine, plumbing), settings).create_cart(Caller(), NewCart())).cart.token
    now = datetime.datetime.now(datetime.UTC)
    long_idle = now - datetime.timedelta(seconds=settings.cart_abandoned_after + 60)
    async with cart_engine.begin() as conn:
        for token, updated_at, expires_at in ((idle, long_idle, now + datetime.timedelta(hours=1)),
                                              (idle_and_due, long_idle, LONG_AGO),
                                              (recent, now - datetime.timedelta(hours=1), now + datetime.timedelta(hours=1)),
                                              (empty, long_idle, now + datetime.timedelta(hours=1))):
            await conn.execute(update(carts).where(carts.c.token == token)
                               .values(updated_at=updated_at, expires_at=expires_at))

    swept = await sweeper(cart_engine, settings, batch=3).sweep()

    assert {idle, idle_and_due} <= set(swept.abandoned) and not {recent, empty} & set(swept.abandoned)
    assert idle_and_due in swept.expired and idle not in swept.expired
    assert (await rows(cart_engine, [idle]))[idle] == ("active", 1)  # only abandoned_at changed
    assert (await rows(cart_engine, [idle_and_due]))[idle_and_due] == ("expired", 2)
    [event] = await abandoned_events(cart_engine, idle)
    assert (event["cart_token"], event["status"], event["total"], event["currency"]) == (idle, "active", "1768.82", "INR")
    assert [(item["plan_id"], item["quantity"]) for item in event["items"]] == [(BACKEND_1M, 1)]
    assert datetime.datetime.fromisoformat(event["updated_at"]) == long_idle.replace(microsecond=0)
    assert len(await abandoned_events(cart_engine, idle_and_due)) == 1

    again = await sweeper(cart_engine, settings).sweep()
    assert not {idle, idle_and_due} & set(again.abandoned)
    assert len(await abandoned_events(cart_engine, idle)) == 1 and len(await abandoned_events(cart_engine, idle_and_due)) == 1
    async with cart_engine.connect() as conn:
        audited = (await conn.execute(select(audit_log.c.action).where(audit_log.c.entity_id == idle)
                                     .order_by(audit_log.c.id))).scalars().all()
    assert audited == ["created", "abandoned"]
