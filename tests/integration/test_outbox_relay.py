"""The outbox relay against real PostgreSQL and NATS JetStream: order, marking, dedup, one leader,
NOTIFY wake-up, NATS outages, and a SIGKILL between the PubAck and the mark."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid

import pytest
from sqlalchemy import select, text

from common.events import AGGREGATE_HEADER, CORRELATION_HEADER, MSG_ID_HEADER, OUTBOX_SEQ_HEADER
from common.outbox import add_event
from common.request_context import correlation_id_var
from common.tables import outbox
from tests.support.event_bus import (
    PrivateNats, drop_streams, jetstream, msg_ids, process_env, python_process, running_relay, stream_messages,
    unique_events, wait_exit, wait_for,
)

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
async def events(settings):
    chosen = unique_events()
    yield chosen
    await drop_streams(settings.nats_url, chosen)


async def add_rows(engine, count: int, *, aggregate: str | None = None, correlation: str = "") -> list[str]:
    aggregate = aggregate or f"agg-{uuid.uuid4()}"
    ids = []
    token = correlation_id_var.set(correlation)
    try:
        for n in range(count):
            async with engine.begin() as conn:
                ids.append(await add_event(conn, subject="checkout.test.happened", aggregate_id=aggregate,
                                           payload={"n": n, "aggregate": aggregate}))
    finally:
        correlation_id_var.reset(token)
    return ids


async def published(engine, ids: list[str]) -> dict[str, object]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(outbox.c.id, outbox.c.published_at).where(outbox.c.id.in_(ids)))
        return {row.id: row.published_at for row in rows}


async def all_marked(engine, ids: list[str]) -> bool:
    return all(stamp is not None for stamp in (await published(engine, ids)).values())


async def test_rows_are_published_in_seq_order_with_headers_and_marked(engine, settings, events):
    ids = await add_rows(engine, 25, aggregate="order-1", correlation="corr-relay-1")
    async with running_relay(settings, events):
        await wait_for(lambda: all_marked(engine, ids), 10, "rows marked published")
    async with jetstream(settings.nats_url) as js:
        messages = [m for m in await stream_messages(js, events) if m.headers[MSG_ID_HEADER] in set(ids)]
    assert [m.headers[MSG_ID_HEADER] for m in messages] == ids  # stream order = outbox seq order
    seqs = [int(m.headers[OUTBOX_SEQ_HEADER]) for m in messages]
    assert seqs == sorted(seqs)
    first = messages[0]
    assert first.subject == f"{events.subject_prefix}checkout.test.happened"
    assert json.loads(first.data) == {"n": 0, "aggregate": "order-1"}
    assert first.headers[CORRELATION_HEADER] == "corr-relay-1"
    assert first.headers[AGGREGATE_HEADER] == "order-1"


async def test_a_row_published_twice_is_one_stream_message(engine, settings, events):
    ids = await add_rows(engine, 3)
    async with running_relay(settings, events) as relay:
        await wait_for(lambda: all_marked(engine, ids), 10, "first publication")
    assert relay.stats.duplicates == 0
    async with engine.begin() as conn:  # as if the relay died after the PubAck, before the mark
        await conn.execute(outbox.update().where(outbox.c.id.in_(ids)).values(published_at=None))
    async with running_relay(settings, events) as again:
        await wait_for(lambda: all_marked(engine, ids), 10, "second publication")
    assert again.stats.duplicates == 3  # JetStream said: already stored
    async with jetstream(settings.nats_url) as js:
        found = [i for i in await msg_ids(js, events) if i in set(ids)]
    assert found == ids


async def test_two_relays_one_leader_no_duplicates(engine, settings, events):
    async with running_relay(settings, events, name="relay-a") as a, running_relay(settings, events, name="relay-b") as b:
        await wait_for(lambda: _true(a.is_leader or b.is_leader), 10, "a leader")
        ids = []
        for _ in range(5):
            ids += await add_rows(engine, 4)
            await asyncio.sleep(0.05)
            assert [a.is_leader, b.is_leader].count(True) == 1
        await wait_for(lambda: all_marked(engine, ids), 10, "rows marked")
        leader, standby = (a, b) if a.is_leader else (b, a)
        assert standby.stats.published == 0 and standby.stats.terms_as_leader == 0
        assert leader.stats.duplicates == 0
    async with jetstream(settings.nats_url) as js:
        found = await msg_ids(js, events)
    assert [i for i in found if i in set(ids)] == ids
    assert len(found) == len(set(found))


async def test_a_standby_takes_over_when_the_leader_stops(engine, settings, events):
    standby_name = f"standby-{uuid.uuid4().hex[:8]}"
    async with contextlib.AsyncExitStack() as first:
        leader = await first.enter_async_context(running_relay(settings, events, name="leader"))
        await wait_for(lambda: _true(leader.is_leader), 10, "the first relay to lead")
        async with running_relay(settings, events, name=standby_name) as standby:
            async def tried() -> bool:
                return standby.is_leader or await tried_the_lock(engine, standby_name)
            await wait_for(tried, 10, "the standby to try the lock")
            assert not standby.is_leader
            await first.aclose()  # the leader stops; its session ends and the lock is free
            # it retries the lock every second: far less than this deadline
            await wait_for(lambda: _true(standby.is_leader), 10, "the standby to take over")
            ids = await add_rows(engine, 2)
            await wait_for(lambda: all_marked(engine, ids), 10, "the new leader publishes")


async def tried_the_lock(engine, application_name: str) -> bool:
    """The relay's session has finished a pg_try_advisory_lock (its last statement, now idle)."""
    async with engine.connect() as conn:
        return bool((await conn.execute(text(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = :name AND state = 'idle'"
            " AND query LIKE 'SELECT pg_try_advisory_lock(%'"), {"name": application_name})).scalar_one())


async def test_notify_wakes_the_relay_without_waiting_for_the_poll(engine, settings, events):
    slow_poll = unique_events(stream=events.stream, dlq_stream=events.dlq_stream, subject_prefix=events.subject_prefix,
                              relay_poll_interval=30.0)
    first = await add_rows(engine, 1)  # for the relay's first pass, which may create the stream
    async with running_relay(settings, slow_poll):
        await wait_for(lambda: all_marked(engine, first), 10, "the first pass")
        ids = await add_rows(engine, 1)
        # the poll would take 30 s: publication well before that came from the NOTIFY
        await wait_for(lambda: all_marked(engine, ids), 10, "publication after the NOTIFY")


async def test_the_relay_waits_out_a_nats_outage(engine, settings, events, tmp_path):
    server = PrivateNats(tmp_path / "nats")
    ids = await add_rows(engine, 3)
    async with running_relay(settings, events, nats_url=server.url) as relay:
        # NATS is not there yet: the relay fails, and retries with backoff
        await wait_for(lambda: _true(relay.stats.failures >= 1), 15, "a failed publication")
        assert not await all_marked(engine, ids)
        server.start()
        try:
            await wait_for(lambda: all_marked(engine, ids), 15, "publication after NATS came up")
            async with jetstream(server.url) as js:
                assert [i for i in await msg_ids(js, events) if i in set(ids)] == ids
        finally:
            await asyncio.to_thread(server.stop)


async def test_the_relay_recovers_when_its_database_session_is_killed(engine, settings, events):
    name = f"relay-{uuid.uuid4().hex[:8]}"
    async with running_relay(settings, events, name=name) as relay:
        await wait_for(lambda: _true(relay.is_leader), 10, "leadership")
        async with engine.connect() as conn:  # an operator (or a failover) ends the leader's session
            killed = (await conn.execute(text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = :name"),
                {"name": name})).scalar_one()
        assert killed == 1
        ids = await add_rows(engine, 3)
        await wait_for(lambda: all_marked(engine, ids), 15, "publication after reconnecting")
        assert relay.is_leader and relay.stats.terms_as_leader == 2


@pytest.mark.slow
async def test_relay_killed_after_publish_before_mark_publishes_once(own_engine, own_settings, events, tmp_path):
    # A database of its own: the relay publishes every unpublished row, so the kill could land on another test's.
    engine, settings = own_engine, own_settings
    ids = await add_rows(engine, 3)
    log = tmp_path / "relay.log"
    with python_process("common.outbox_relay", process_env(settings, events, fault="relay_after_publish"), log) as crashed:
        assert await wait_exit(crashed, 30) == -9, log.read_text()
    assert not any((await published(engine, ids)).values())  # published, never marked
    async with jetstream(settings.nats_url) as js:
        assert [i for i in await msg_ids(js, events) if i in set(ids)] == ids
    with python_process("common.outbox_relay", process_env(settings, events), log) as restarted:
        await wait_for(lambda: all_marked(engine, ids), 20, "the restarted relay marks the rows")
        restarted.terminate()
        assert await wait_exit(restarted, 10) == 0, log.read_text()  # SIGTERM: a clean stop
    async with jetstream(settings.nats_url) as js:
        assert [i for i in await msg_ids(js, events) if i in set(ids)] == ids  # still once each


async def _true(value: bool) -> bool:
    return value
