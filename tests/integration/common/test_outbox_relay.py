"""The per-schema outbox relay against real PostgreSQL and NATS JetStream: order, marking, dedup,
one leader per schema, NOTIFY wake-up, NATS outages and restarts, and a SIGKILL between the PubAck
and the mark.

Each test relays a schema of its own (tests/support/jetstream.py `scratch_plumbing`: the plumbing
tables as the migrations make them, owned by enrollment_svc's role, which the relay connects as),
so its relay's lock, NOTIFY channel and rows meet no other test's; the crash test runs on a
database of its own and relays the real `enrollment` schema in a `python -m common.outbox_relay`
process."""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import MetaData, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from common.db import create_engine
from common.events import AGGREGATE_HEADER, CORRELATION_HEADER, MSG_ID_HEADER, OUTBOX_SEQ_HEADER
from common.outbox_relay import OutboxRelay
from common.plumbing import Plumbing, plumbing_tables
from common.request_context import correlation_id_var
from common.settings import Settings
from common.uow import UnitOfWork
from tests.support.jetstream import (
    PrivateNats,
    drop_streams,
    events_of,
    holds,
    jetstream,
    msg_ids,
    namespaced,
    process_env,
    python_process,
    running,
    scratch_plumbing,
    stream_messages,
    wait_exit,
    wait_for,
)

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
async def plumbing(admin_engine: AsyncEngine) -> AsyncIterator[Plumbing]:
    async with scratch_plumbing(admin_engine) as made:
        yield made


@pytest.fixture
async def ns(settings: Settings) -> AsyncIterator[Settings]:
    """The session's settings with a JetStream namespace of this test's own."""
    chosen = namespaced(settings)
    yield chosen
    await drop_streams(chosen.nats_url, events_of(chosen))


@pytest.fixture
def engine(enrollment_engine: AsyncEngine) -> AsyncEngine:
    return enrollment_engine


async def add_rows(engine: AsyncEngine, plumbing: Plumbing, count: int, *, aggregate: str | None = None,
                   correlation: str = "") -> list[str]:
    """`count` events of one aggregate, each committed by a unit of work of its own."""
    aggregate = aggregate or f"agg-{uuid.uuid4()}"
    ids = []
    token = correlation_id_var.set(correlation)
    try:
        for n in range(count):
            async with UnitOfWork(engine, plumbing) as uow:
                ids.append(uow.publish("checkout.test.happened", aggregate, {"n": n, "aggregate": aggregate}).id)
                await uow.commit()
    finally:
        correlation_id_var.reset(token)
    return ids


async def published(engine: AsyncEngine, plumbing: Plumbing, ids: list[str]) -> dict[str, object]:
    outbox = plumbing.outbox
    async with engine.connect() as conn:
        rows = await conn.execute(select(outbox.c.id, outbox.c.published_at).where(outbox.c.id.in_(ids)))
        return {row.id: row.published_at for row in rows}


def all_marked(engine: AsyncEngine, plumbing: Plumbing, ids: list[str]):
    async def check() -> bool:
        stamps = await published(engine, plumbing, ids)
        return len(stamps) == len(ids) and all(stamp is not None for stamp in stamps.values())

    return check


@contextlib.asynccontextmanager
async def running_relay(settings: Settings, plumbing: Plumbing, *, nats_url: str | None = None,
                        name: str = "test-relay") -> AsyncIterator[OutboxRelay]:
    relay = OutboxRelay(settings.enrollment_database_url, plumbing, nats_url or settings.nats_url,
                        events_of(settings), name=name)
    async with running(name, relay.run):
        yield relay


async def test_rows_are_published_in_seq_order_with_headers_and_marked(engine, plumbing, ns):
    ids = await add_rows(engine, plumbing, 25, aggregate="order-1", correlation="corr-relay-1")
    async with running_relay(ns, plumbing):
        await wait_for(all_marked(engine, plumbing, ids), 10, "rows marked published")
    events = events_of(ns)
    async with jetstream(ns.nats_url) as js:
        messages = [m for m in await stream_messages(js, events) if m.headers[MSG_ID_HEADER] in set(ids)]
    assert [m.headers[MSG_ID_HEADER] for m in messages] == ids  # stream order = outbox seq order
    seqs = [int(m.headers[OUTBOX_SEQ_HEADER]) for m in messages]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    first = messages[0]
    assert first.subject == f"{events.subject_prefix}checkout.test.happened"
    assert json.loads(first.data) == {"n": 0, "aggregate": "order-1"}
    assert first.headers[CORRELATION_HEADER] == "corr-relay-1"
    assert first.headers[AGGREGATE_HEADER] == "order-1"


async def test_a_row_published_twice_is_one_stream_message(engine, plumbing, ns):
    ids = await add_rows(engine, plumbing, 3)
    async with running_relay(ns, plumbing) as relay:
        await wait_for(all_marked(engine, plumbing, ids), 10, "first publication")
    assert relay.stats.duplicates == 0
    async with engine.begin() as conn:  # as if the relay died after the PubAck, before the mark
        await conn.execute(update(plumbing.outbox).where(plumbing.outbox.c.id.in_(ids)).values(published_at=None))
    async with running_relay(ns, plumbing) as again:
        await wait_for(all_marked(engine, plumbing, ids), 10, "second publication")
    assert again.stats.duplicates == 3  # JetStream said: already stored
    async with jetstream(ns.nats_url) as js:
        found = [i for i in await msg_ids(js, events_of(ns)) if i in set(ids)]
    assert found == ids


async def test_two_relays_one_leader_no_duplicates(engine, plumbing, ns):
    async with running_relay(ns, plumbing, name="relay-a") as a, running_relay(ns, plumbing, name="relay-b") as b:
        await wait_for(holds(lambda: a.is_leader or b.is_leader), 10, "a leader")
        await wait_for(holds(lambda: a.stats.standby_tries + b.stats.standby_tries >= 1), 10,
                       "the other relay to find the lock taken")
        ids = []
        for _ in range(5):
            ids += await add_rows(engine, plumbing, 4)
            assert [a.is_leader, b.is_leader].count(True) == 1
        await wait_for(all_marked(engine, plumbing, ids), 10, "rows marked")
        leader, standby = (a, b) if a.is_leader else (b, a)
        assert standby.stats.published == 0 and standby.stats.terms_as_leader == 0
        assert leader.stats.duplicates == 0 and leader.stats.published == len(ids)
    async with jetstream(ns.nats_url) as js:
        found = await msg_ids(js, events_of(ns))
    assert [i for i in found if i in set(ids)] == ids
    assert len(found) == len(set(found))


async def test_each_schema_has_its_own_leader(engine, admin_engine, plumbing, ns):
    """One leader per schema, not one for the whole database: two services relay at once."""
    async with scratch_plumbing(admin_engine) as other:
        assert other.relay_lock_key != plumbing.relay_lock_key
        async with running_relay(ns, plumbing, name="relay-one") as one, \
                running_relay(ns, other, name="relay-two") as two:
            await wait_for(holds(lambda: one.is_leader and two.is_leader), 10, "both relays to lead")
            mine, theirs = await add_rows(engine, plumbing, 3), await add_rows(engine, other, 3)
            await wait_for(all_marked(engine, plumbing, mine), 10, "the first schema's rows")
            await wait_for(all_marked(engine, other, theirs), 10, "the second schema's rows")
        assert (one.stats.published, two.stats.published) == (3, 3)
        assert one.stats.standby_tries == two.stats.standby_tries == 0


async def test_a_standby_takes_over_when_the_leader_stops(engine, plumbing, ns):
    async with contextlib.AsyncExitStack() as first:
        leader = await first.enter_async_context(running_relay(ns, plumbing, name="leader"))
        await wait_for(holds(lambda: leader.is_leader), 10, "the first relay to lead")
        async with running_relay(ns, plumbing, name="standby") as standby:
            await wait_for(holds(lambda: standby.stats.standby_tries >= 2), 10, "the standby to try the lock twice")
            assert not standby.is_leader
            await first.aclose()  # the leader stops; its session ends and the lock is free
            started = time.monotonic()
            await wait_for(holds(lambda: standby.is_leader), 5, "the standby to take over")
            assert time.monotonic() - started < 2.5  # it retries the lock every second
            ids = await add_rows(engine, plumbing, 2)
            await wait_for(all_marked(engine, plumbing, ids), 5, "the new leader publishes")


async def test_notify_wakes_the_relay_without_waiting_for_the_poll(engine, plumbing, ns):
    slow_poll = ns.replace(outbox_relay_poll_interval=30.0)
    async with running_relay(slow_poll, plumbing) as relay:
        await wait_for(holds(lambda: relay.is_leader), 10, "leadership")
        first = await add_rows(engine, plumbing, 1)  # the first pass creates the streams
        await wait_for(all_marked(engine, plumbing, first), 10, "the first publication")
        started = time.monotonic()
        ids = await add_rows(engine, plumbing, 1)
        await wait_for(all_marked(engine, plumbing, ids), 5, "publication", interval=0.005)
        assert time.monotonic() - started < 1.0


async def test_the_relay_waits_out_a_nats_outage(engine, plumbing, ns, tmp_path):
    server = PrivateNats(tmp_path / "nats")
    ids = await add_rows(engine, plumbing, 3)
    async with running_relay(ns, plumbing, nats_url=server.url) as relay:
        # NATS is not there yet: the relay retries with backoff, publishing nothing
        await wait_for(holds(lambda: relay.stats.failures >= 2), 15, "failed publish attempts")
        assert not await all_marked(engine, plumbing, ids)()
        server.start()
        try:
            await wait_for(all_marked(engine, plumbing, ids), 15, "publication after NATS came up")
            async with jetstream(server.url) as js:
                assert [i for i in await msg_ids(js, events_of(ns)) if i in set(ids)] == ids
        finally:
            server.stop()


async def test_the_relay_publishes_across_a_nats_restart(engine, plumbing, ns, tmp_path):
    server = PrivateNats(tmp_path / "nats")
    server.start()
    try:
        async with running_relay(ns, plumbing, nats_url=server.url) as relay:
            before = await add_rows(engine, plumbing, 2)
            await wait_for(all_marked(engine, plumbing, before), 10, "publication before the restart")
            server.stop()
            during = await add_rows(engine, plumbing, 2)  # written while NATS is down
            await wait_for(holds(lambda: relay.stats.failures >= 1), 15, "a failed publish while NATS is down")
            assert not await all_marked(engine, plumbing, during)()
            server.start()  # same port, same store: the stream is still there
            after = await add_rows(engine, plumbing, 2)
            await wait_for(all_marked(engine, plumbing, during + after), 20, "publication after the restart")
        async with jetstream(server.url) as js:
            found = await msg_ids(js, events_of(ns))
        assert found == before + during + after  # each once, in outbox order
        assert relay.stats.terms_as_leader == 1  # NATS trouble never cost the relay its leadership
    finally:
        server.stop()


async def test_the_relay_recovers_when_its_database_session_is_killed(engine, admin_engine, plumbing, ns):
    name = f"relay-{uuid.uuid4().hex[:8]}"
    async with running_relay(ns, plumbing, name=name) as relay:
        await wait_for(holds(lambda: relay.is_leader), 10, "leadership")
        async with admin_engine.connect() as conn:  # an operator (or a failover) ends the leader's session
            killed = (await conn.execute(text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = :name"),
                {"name": name})).scalar_one()
        assert killed == 1
        ids = await add_rows(engine, plumbing, 3)
        await wait_for(all_marked(engine, plumbing, ids), 15, "publication after reconnecting")
        assert relay.is_leader and relay.stats.terms_as_leader == 2


@pytest.mark.slow
async def test_relay_killed_after_publish_before_mark_publishes_once(own_settings, tmp_path):
    # A database of its own: the relay publishes every unpublished row of its schema, so in the
    # shared database the kill could land on another test's row.
    settings = namespaced(own_settings)
    plumbing = plumbing_tables(MetaData(), "enrollment")
    engine = create_engine(settings, "enrollment", pool_size=2)
    log = tmp_path / "relay.log"
    argv = ["-m", "common.outbox_relay", "enrollment"]
    try:
        ids = await add_rows(engine, plumbing, 3)
        with python_process(argv, process_env(settings, fault="relay_after_publish"), log) as crashed:
            assert await wait_exit(crashed, 30) == -9, log.read_text()
        assert not any((await published(engine, plumbing, ids)).values())  # published, never marked
        async with jetstream(settings.nats_url) as js:
            assert [i for i in await msg_ids(js, events_of(settings)) if i in set(ids)] == ids
        with python_process(argv, process_env(settings), log) as restarted:
            await wait_for(all_marked(engine, plumbing, ids), 20, "the restarted relay marks the rows")
            restarted.terminate()
            assert await wait_exit(restarted, 10) == 0, log.read_text()  # SIGTERM: a clean stop
        async with jetstream(settings.nats_url) as js:
            assert [i for i in await msg_ids(js, events_of(settings)) if i in set(ids)] == ids  # still once each
    finally:
        await engine.dispose()
        await drop_streams(settings.nats_url, events_of(settings))
