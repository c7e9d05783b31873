"""`python -m enrollment_svc` and `python -m enrollment_svc.replay_dlq` as real processes: SIGKILL
between the commit and the ack, a NATS restart mid-stream, and the replay command. Each ends with
exactly one enrollment per line of every paid order and nothing lost. Also: without the test
switch, the fault setting is ignored.

Each test has a database and a JetStream namespace of its own. The paid orders arrive as order_svc
sends them: a unit of work writes `checkout.order.paid` into the `ordering` outbox, and that
schema's relay (run in this process) publishes it."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import subprocess
import sys
import urllib.request
from collections.abc import AsyncIterator

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from common.db import create_engine
from common.dead_letters import DeadLetterStore
from common.faults import FAULT_ENV, TEST_HOOKS_ENV
from common.settings import Settings
from enrollment_svc import workers
from enrollment_svc.tables import plumbing
from tests.support.event_bus import (
    ROOT,
    PrivateNats,
    drop_streams,
    events_of,
    free_port,
    jetstream,
    namespaced,
    python_process,
    running,
    settings_env,
    stream_messages,
    wait_exit,
    wait_for,
)
from tests.support.paid_orders import (
    ORDER_PAID,
    ORDERING,
    PaidOrder,
    assert_one_enrollment_per_line,
    audits_of,
    created_events,
    database_refuses,
    enrolled_orders,
    enrollments_of,
    order_paid_json,
    order_relay,
    paid_order,
    write_paid,
)

pytestmark = pytest.mark.timeout(120)
DURABLE = workers.ORDERS_DURABLE


@contextlib.asynccontextmanager
async def own_world(own_settings: Settings, **overrides) -> AsyncIterator[tuple[Settings, AsyncEngine, AsyncEngine]]:
    """The test's own database and namespace; engines as order_svc (the fake producer) and enrollment_svc."""
    ns = namespaced(own_settings, **overrides)
    order_engine, enrollment_engine = create_engine(ns, "order", pool_size=2), create_engine(ns, "enrollment", pool_size=2)
    try:
        yield ns, order_engine, enrollment_engine
    finally:
        await drop_streams(ns)
        await order_engine.dispose()
        await enrollment_engine.dispose()


async def all_enrolled(engine: AsyncEngine, made: list[PaidOrder]) -> bool:
    return all([len(await enrollments_of(engine, o.order_token)) == len(o.lines) for o in made])


async def consumer_info(settings: Settings):
    async with jetstream(settings.nats_url) as js:
        return await js.consumer_info(settings.nats_stream, DURABLE)


@pytest.mark.slow
async def test_consumer_killed_after_commit_before_ack(own_settings, tmp_path):
    made = [paid_order(1), paid_order(3, 6), paid_order(6, 1, 3)]
    log = tmp_path / "enrollment.log"
    async with own_world(own_settings) as (ns, order_engine, engine), running(order_relay(ns)):
        for order in made:
            await write_paid(order_engine, order)
        # one delivery at a time, so the kill interrupts exactly the first one
        crash_env = settings_env(ns, fault="consumer_after_commit") | {"CONSUMER_MAX_IN_FLIGHT": "1"}
        with python_process("enrollment_svc", crash_env, log) as crashed:
            assert await wait_exit(crashed, 30) == -9, log.read_text()

        # Before any restart: exactly one delivery, committed (all its lines, its event, its audit rows), never acked.
        enrolled = await enrolled_orders(engine, made)
        assert len(enrolled) == 1, f"{len(enrolled)} orders had enrollments when the consumer was killed"
        [killed] = enrolled
        before = await assert_one_enrollment_per_line(engine, killed)
        assert sum([len(await enrollments_of(engine, o.order_token)) for o in made]) == len(killed.lines)
        assert len(await created_events(engine, killed.order_token)) == 1
        assert len(await audits_of(engine, [r.enrollment_id for r in before])) == len(killed.lines)
        info = await consumer_info(ns)
        assert (info.delivered.consumer_seq, info.ack_floor.consumer_seq) == (1, 0), "one delivery, not acked"
        async with jetstream(ns.nats_url) as js:
            delivered = await js.get_msg(ns.nats_stream, info.delivered.stream_seq)
        assert json.loads(delivered.data)["order_token"] == killed.order_token  # the kill came after its commit

        metrics_port = free_port()
        with python_process("enrollment_svc", settings_env(ns.replace(enrollment_metrics_port=metrics_port)),
                            log) as service:
            await wait_for(lambda: all_enrolled(engine, made), 30, "every order enrolled")

            async def settled() -> bool:
                info = await consumer_info(ns)
                return info.num_ack_pending == 0 and info.num_pending == 0

            await wait_for(settled, ns.consumer_ack_wait * 3 + 10, "every delivery acked")
            info = await consumer_info(ns)
            async with jetstream(ns.nats_url) as js:
                paid = [m for m in await stream_messages(js, events_of(ns)) if m.subject == ns.nats_subject_prefix + ORDER_PAID]
            assert len(paid) == len(made) and info.delivered.consumer_seq > len(paid)  # the unacked one came again
            outcomes = await paid_order_outcomes(metrics_port)
            # the restart enrolled only the two others; the redelivery found the committed enrollments
            assert outcomes["enrolled"] == len(made) - 1 and outcomes["already_enrolled"] >= 1, outcomes
            service.terminate()
            assert await wait_exit(service, 15) == 0, log.read_text()  # graceful stop on SIGTERM

        for order in made:
            rows = await assert_one_enrollment_per_line(engine, order)
            assert len(await created_events(engine, order.order_token)) == 1
            audits = await audits_of(engine, [r.enrollment_id for r in rows])
            assert sorted((a.entity_id, a.action) for a in audits) == sorted((r.enrollment_id, "created") for r in rows)
        assert [r.enrollment_id for r in await enrollments_of(engine, killed.order_token)] == [
            r.enrollment_id for r in before]


async def test_a_fault_without_the_test_switch_is_ignored_with_a_warning(own_settings, tmp_path):
    order = paid_order(1, 3)
    log = tmp_path / "enrollment.log"
    async with own_world(own_settings) as (ns, order_engine, engine), running(order_relay(ns)):
        await write_paid(order_engine, order)
        env = settings_env(ns) | {FAULT_ENV: "consumer_after_commit"}  # no CHECKOUT_TEST_HOOKS
        with python_process("enrollment_svc", env, log) as service:
            await wait_for(lambda: all_enrolled(engine, [order]), 30, "the order enrolled")

            async def acked() -> bool:
                assert service.poll() is None, f"killed by the fault point: {log.read_text()}"
                return (await consumer_info(ns)).ack_floor.consumer_seq == 1

            await wait_for(acked, 30, "the delivery acked (the ack comes after the fault point)")
            assert service.poll() is None, log.read_text()
            service.terminate()
            assert await wait_exit(service, 15) == 0, log.read_text()
    assert f"{FAULT_ENV} is set but {TEST_HOOKS_ENV} is not" in log.read_text()


@pytest.mark.slow
async def test_nats_restarted_mid_stream_loses_nothing(own_settings, tmp_path):
    server = PrivateNats(tmp_path / "nats")
    server.start()
    made = [paid_order(*[(1, 3, 6)[(n + k) % 3] for k in range(n % 3 + 1)]) for n in range(12)]  # 1 to 3 lines
    log = tmp_path / "enrollment.log"
    try:
        async with own_world(own_settings, nats_url=server.url) as (ns, order_engine, engine):
            with python_process("enrollment_svc", settings_env(ns), log):
                async with running(order_relay(ns)):
                    for order in made[:4]:
                        await write_paid(order_engine, order)
                    await wait_for(lambda: _any(enrolled_orders(engine, made[:4])), 20, "the stream to start flowing")
                    await asyncio.to_thread(server.stop)  # mid-stream
                    failed = relay_failures()
                    for order in made[4:8]:
                        await write_paid(order_engine, order)  # written while NATS is down: they wait in the outbox
                    await wait_for(lambda: _is(relay_failures() > failed), 20, "the relay to fail on the outage")
                    await asyncio.to_thread(server.start)  # same port, same store
                    for order in made[8:]:
                        await write_paid(order_engine, order)
                    await wait_for(lambda: all_enrolled(engine, made), 45, "every order enrolled after the restart")
                    await wait_for(lambda: _all_created_published(engine, made), 30,
                                   "enrollment_svc's relay to publish every enrollment.created")
            async with jetstream(server.url) as js:
                messages = await stream_messages(js, events_of(ns))
            for subject in (ORDER_PAID, "checkout.enrollment.created"):
                tokens = [json.loads(m.data)["order_token"] for m in messages
                          if m.subject == ns.nats_subject_prefix + subject]
                assert sorted(tokens) == sorted(o.order_token for o in made), subject  # each once: none lost, no copies
            for order in made:
                await assert_one_enrollment_per_line(engine, order)
            async with order_engine.connect() as conn:
                unpublished = (await conn.execute(select(ORDERING.outbox.c.id).where(
                    ORDERING.outbox.c.published_at.is_(None)))).all()
            assert unpublished == []
    finally:
        await asyncio.to_thread(server.stop)


async def test_replay_dlq_command(own_settings, tmp_path):
    refused, other = paid_order(1, 6), paid_order(3)
    async with own_world(own_settings) as (ns, _, engine):
        store = DeadLetterStore(engine, plumbing)
        for seq, order in ((7, refused), (8, other)):
            assert await store.park(stream=ns.nats_stream, consumer=DURABLE, stream_seq=seq, subject=ORDER_PAID,
                                    payload=order_paid_json(order), deliveries=3, error="database: refused")
        [refused_id] = [d.dead_letter_id for d in await store.list() if d.stream_seq == 7]

        def run(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([sys.executable, "-m", "enrollment_svc.replay_dlq", *args], cwd=ROOT,
                                  env=settings_env(ns), capture_output=True, text=True, timeout=60)

        assert (await asyncio.to_thread(run)).returncode == 2  # neither --all nor an id
        admin = create_async_engine(ns.database_url, pool_size=1)  # the test database's administrator
        try:
            async with database_refuses(admin, refused) as refusal:
                no = await asyncio.to_thread(run, refused_id)
                assert no.returncode == 1 and f"{refused_id}: not replayed" in no.stdout and refusal in no.stdout, (
                    no.stdout + no.stderr)
                assert await enrollments_of(engine, refused.order_token) == []
        finally:
            await admin.dispose()
        done = await asyncio.to_thread(run, "--all")  # oldest first: both parked ones
        assert done.returncode == 0 and f"{refused_id}: replayed" in done.stdout, done.stdout + done.stderr
        assert [d.status for d in await store.list()] == ["replayed", "replayed"]
        for order in (refused, other):
            await assert_one_enrollment_per_line(engine, order)
        nothing = await asyncio.to_thread(run, "--all")
        assert nothing.returncode == 0 and "no parked dead letters" in nothing.stdout


async def paid_order_outcomes(metrics_port: int) -> dict[str, float]:
    """checkout_enrollment_orders_total by outcome, from the service's /metrics."""
    def scrape() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as reply:
            return reply.read().decode()

    outcomes: collections.Counter[str] = collections.Counter()
    for family in text_string_to_metric_families(await asyncio.to_thread(scrape)):
        for sample in family.samples:
            if sample.name == "checkout_enrollment_orders_total":
                outcomes[sample.labels["outcome"]] += sample.value
    return outcomes


async def _all_created_published(engine: AsyncEngine, made: list[PaidOrder]) -> bool:
    rows = [row for order in made for row in await created_events(engine, order.order_token)]
    return len(rows) == len(made) and all(row.published_at is not None for row in rows)


def relay_failures() -> float:
    """Failed publish batches of the `ordering` relay running in this process."""
    return REGISTRY.get_sample_value("checkout_outbox_publish_failures_total", {"schema": "ordering"}) or 0.0


async def _is(value: bool) -> bool:
    return value


async def _any(awaitable) -> bool:
    return bool(await awaitable)
