"""What the outbox relay tells Prometheus (docs/OPERATIONS.md): the age of the oldest row it could
not publish yet, the parked dead letters of its schema, each published event by subject, and a
service's own hook on each first publication. Real PostgreSQL and NATS; a schema of the test's own
(tests/support/jetstream.py `scratch_plumbing`), so the gauges' `schema` label is this test's alone."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import prometheus_client
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from common.dead_letters import DeadLetterStore
from common.outbox_relay import OutboxRelay
from common.plumbing import Plumbing
from common.settings import Settings
from tests.integration.common.test_outbox_relay import add_rows, all_marked
from tests.support.jetstream import (
    PrivateNats,
    drop_streams,
    events_of,
    holds,
    namespaced,
    running,
    scratch_plumbing,
    wait_for,
)

pytestmark = pytest.mark.timeout(60)


def sample(name: str, **labels: str) -> float:
    return prometheus_client.REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
async def plumbing(admin_engine: AsyncEngine) -> AsyncIterator[Plumbing]:
    async with scratch_plumbing(admin_engine) as made:
        yield made


@pytest.fixture
async def ns(settings: Settings) -> AsyncIterator[Settings]:
    chosen = namespaced(settings)
    yield chosen
    await drop_streams(chosen.nats_url, events_of(chosen))


def relay_of(settings: Settings, plumbing: Plumbing, nats_url: str | None = None, **kwargs: Any) -> OutboxRelay:
    return OutboxRelay(settings.enrollment_database_url, plumbing, nats_url or settings.nats_url, events_of(settings),
                       name="metrics-relay", **kwargs)


async def test_outbox_lag_is_the_oldest_unpublished_rows_age_until_it_is_published(
        enrollment_engine, plumbing, ns, tmp_path):
    server = PrivateNats(tmp_path / "nats")  # not started: nothing can be published
    ids = await add_rows(enrollment_engine, plumbing, 3)
    async with enrollment_engine.connect() as conn:
        oldest = (await conn.execute(select(plumbing.outbox.c.created_at).where(plumbing.outbox.c.id == ids[0]))).scalar_one()
    relay = relay_of(ns, plumbing, server.url)
    assert sample("checkout_outbox_lag_seconds", schema=plumbing.schema) == 0.0
    async with running("metrics-relay", relay.run):
        await wait_for(holds(lambda: relay.stats.failures >= 1), 15, "a failed publish")
        read_at = time.time()
        lag = sample("checkout_outbox_lag_seconds", schema=plumbing.schema)
        age = read_at - oldest.timestamp()
        assert age - 0.5 <= lag <= age + 0.5, (lag, age)
        server.start()
        try:
            await wait_for(all_marked(enrollment_engine, plumbing, ids), 15, "publication after NATS came up")
            assert sample("checkout_outbox_lag_seconds", schema=plumbing.schema) == 0.0
        finally:
            server.stop()


async def test_parked_dead_letters_are_counted_by_the_leader_and_zero_once_it_stops(enrollment_engine, plumbing, ns):
    store = DeadLetterStore(enrollment_engine, plumbing)
    for seq in (1, 2, 3):
        assert await store.park(stream="S", consumer="c", stream_seq=seq, subject="checkout.test.happened",
                                payload=b"{}", deliveries=5, error="refused")
    async with enrollment_engine.begin() as conn:  # one of them was replayed since
        await conn.execute(update(plumbing.dead_letters).where(plumbing.dead_letters.c.stream_seq == 3)
                           .values(status="replayed"))
    relay = relay_of(ns, plumbing)
    async with running("metrics-relay", relay.run):
        await wait_for(holds(lambda: sample("checkout_dead_letters_parked", schema=plumbing.schema) == 2.0), 10,
                       "the parked count")
    assert not relay.is_leader
    assert sample("checkout_dead_letters_parked", schema=plumbing.schema) == 0.0


async def test_each_first_publication_is_counted_by_subject_and_handed_to_the_hook(enrollment_engine, plumbing, ns):
    seen: list[tuple[str, Mapping[str, Any]]] = []
    before = sample("checkout_events_published_total", schema=plumbing.schema, subject="checkout.test.happened")
    ids = await add_rows(enrollment_engine, plumbing, 3, aggregate="agg-metrics")
    relay = relay_of(ns, plumbing, on_published=lambda subject, payload: seen.append((subject, payload)))
    async with running("metrics-relay", relay.run):
        await wait_for(all_marked(enrollment_engine, plumbing, ids), 10, "rows published")
    after = sample("checkout_events_published_total", schema=plumbing.schema, subject="checkout.test.happened")
    assert after - before == 3
    assert seen == [("checkout.test.happened", {"n": n, "aggregate": "agg-metrics"}) for n in range(3)]
