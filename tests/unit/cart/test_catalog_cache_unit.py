"""CatalogCache: one load per TTL, a new ETag only for new content, nothing stored from a load that
an invalidation overtook."""

from __future__ import annotations

import asyncio

from prometheus_client import REGISTRY

from cart_svc.catalog_cache import CatalogCache
from checkout.v1 import catalog_pb2
from common.etags import etag_of, none_match


def _sale(slug: str) -> catalog_pb2.Sale:
    return catalog_pb2.Sale(sale_slug=slug, kind="percent", value="5")


async def test_one_load_per_ttl_with_the_etag_of_the_answers_bytes() -> None:
    now, loads = [0.0], []
    cache = CatalogCache(60, clock=lambda: now[0])

    async def load() -> catalog_pb2.Sale:
        loads.append(1)
        return _sale("launch")

    first = await cache.get("sale:launch", load)
    assert (await cache.get("sale:launch", load)) is first and len(loads) == 1
    assert first.etag == etag_of(_sale("launch").SerializeToString(deterministic=True))
    now[0] = 60.0
    assert (await cache.get("sale:launch", load)).etag == first.etag and len(loads) == 2  # reloaded, same bytes


async def test_a_load_overtaken_by_an_invalidation_is_not_stored() -> None:
    cache = CatalogCache(60)
    gate = asyncio.Event()

    async def slow_old() -> catalog_pb2.Sale:
        await gate.wait()
        return _sale("old")

    reading = asyncio.create_task(cache.get("k", slow_old))
    await asyncio.sleep(0)
    cache.clear()  # an admin change lands while the old answer is being read
    gate.set()
    assert (await reading).message.sale_slug == "old"  # that caller gets what it read

    async def new() -> catalog_pb2.Sale:
        return _sale("new")

    assert (await cache.get("k", new)).message.sale_slug == "new"  # the next one does not get the old copy


def test_if_none_match() -> None:
    etag = '"abc"'
    assert none_match('"abc"', etag) and none_match('W/"abc"', etag) and none_match('"x", "abc"', etag)
    assert none_match("*", etag)
    assert not none_match(None, etag) and not none_match("", etag) and not none_match('"abcd"', etag)


async def test_hits_and_misses_are_counted_as_the_catalog_cache() -> None:
    def counts() -> tuple[float, float]:
        return tuple(REGISTRY.get_sample_value("checkout_cache_lookups_total", {"cache": "catalog", "result": result})
                     or 0.0 for result in ("hit", "miss"))  # type: ignore[return-value]

    now = [0.0]
    cache = CatalogCache(60, clock=lambda: now[0])

    async def load() -> catalog_pb2.Sale:
        return _sale("launch")

    before = counts()
    await cache.get("sale:launch", load)  # miss
    await cache.get("sale:launch", load)  # hit
    now[0] = 60.0
    await cache.get("sale:launch", load)  # expired: miss
    cache.clear()
    await cache.get("sale:launch", load)  # invalidated: miss
    after = counts()
    assert (after[0] - before[0], after[1] - before[1]) == (1, 3)


async def test_a_plain_value_is_kept_and_dropped_with_the_answers() -> None:
    now, loads = [0.0], []
    cache = CatalogCache(60, clock=lambda: now[0])

    async def load() -> dict[str, str]:
        loads.append(1)
        return {"plan": f"read {len(loads)}"}

    assert await cache.value("plans", load) == {"plan": "read 1"}
    assert await cache.value("plans", load) == {"plan": "read 1"} and len(loads) == 1
    cache.clear()  # the catalog changed
    assert await cache.value("plans", load) == {"plan": "read 2"}
    now[0] = 60.0
    assert await cache.value("plans", load) == {"plan": "read 3"}  # past its TTL
