"""The catalog cache of every cart_svc process is dropped when an admin changes the catalog in any
of them: the change's outbox row goes out through the relay and JetStream, and each process's core
NATS listener hears it."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from cart_svc.admin import AdminService
from cart_svc.catalog_cache import CatalogCache
from cart_svc.commands import NewInternship, NewPlan
from cart_svc.events import CATALOG_CHANGED
from cart_svc.tables import outbox, plumbing
from cart_svc.workers.catalog_events import CatalogListener
from checkout.v1 import catalog_pb2
from common.outbox_relay import relay_worker
from common.request_context import Caller
from common.uow import uow_factory
from common.workers import Worker
from tests.support.event_bus import events_of, namespaced, running, wait_for


async def _filled(cache: CatalogCache) -> None:
    async def load() -> catalog_pb2.ListInternshipsResponse:
        return catalog_pb2.ListInternshipsResponse()

    await cache.get("internships", load)


async def test_an_admin_change_in_one_process_drops_the_catalog_cache_of_every_process(settings, cart_engine):
    own = namespaced(settings)
    here, there = CatalogCache(60), CatalogCache(60)
    listeners = [CatalogListener(cache, own.nats_url, events_of(own)) for cache in (here, there)]
    workers = [Worker(f"listener-{i}", listener.run) for i, listener in enumerate(listeners)]
    async with running(*workers):
        for listener in listeners:
            await wait_for(_is_set(listener), 10, "the listeners to subscribe")
        for cache in (here, there):
            await _filled(cache)
        generations = (here.generation, there.generation)
        admin = AdminService(uow_factory(cart_engine, plumbing), on_catalog_change=here.clear)
        entry = await admin.create_internship(Caller(str(uuid.uuid4()), ("admin",)), NewInternship(
            title=f"Cache test {uuid.uuid4().hex[:6]}", plans=(NewPlan((3, "month"), "1999.00"),)))
        assert here.generation > generations[0]  # the process that made the change: at once
        async with cart_engine.connect() as conn:
            subjects = (await conn.execute(select(outbox.c.subject).where(
                outbox.c.aggregate_id == entry.internship_id))).scalars().all()
        assert subjects == [CATALOG_CHANGED]  # written with the change, in its transaction
        async with running(relay_worker(own, "cart", plumbing)):
            await wait_for(_moved(there, generations[1]), 15, "the other process to hear the change")


def _is_set(listener: CatalogListener):
    async def check() -> bool:
        return listener.listening.is_set()
    return check


def _moved(cache: CatalogCache, generation: int):
    async def check() -> bool:
        return cache.generation > generation
    return check
