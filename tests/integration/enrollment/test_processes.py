"""`python -m enrollment_svc` and `python -m enrollment_svc.replay_dlq` as real processes: SIGKILL
between the commit and the ack, a NATS restart mid-stream, and the replay command. Each ends with
exactly one enrollment per captured payment and nothing lost. Also: without the test switch, the
fault setting is ignored."""

from __future__ import annotations

import asyncio
import collections
import json
import subprocess
import sys
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select, update

from common.events import CAPTURED_SUBJECT, FAULT_ENV, TEST_HOOKS_ENV
from common.tables import dead_letters, orders, outbox
from enrollment_svc import dead_letters as dead_letter_service
from tests.support.event_bus import (
    ROOT,
    PrivateNats,
    add_captured,
    captured_payload,
    drop_streams,
    enrollments_of,
    free_port,
    jetstream,
    make_order,
    order_row,
    process_env,
    python_process,
    running_relay,
    stream_messages,
    unique_events,
    wait_exit,
    wait_for,
)

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def events(settings):
    chosen = unique_events()
    yield chosen
    await drop_streams(settings.nats_url, chosen)


async def fulfilled_count(engine, made) -> int:
    return sum([(await order_row(engine, order.order_token)).status == "fulfilled" for order in made])


async def all_fulfilled(engine, made) -> bool:
    return await fulfilled_count(engine, made) == len(made)


async def assert_one_enrollment_each(engine, made) -> None:
    for order in made:
        [enrollment] = await enrollments_of(engine, order.order_token)
        assert (await order_row(engine, order.order_token)).enrollment_id == enrollment.enrollment_id


@pytest.mark.slow
async def test_consumer_killed_after_commit_before_ack(own_engine, own_settings, events, tmp_path):
    # A database of its own: the relay below publishes every unpublished outbox row of its database.
    made = [await make_order(own_engine, months=m) for m in (1, 3, 6)]
    log = tmp_path / "enrollment.log"
    async with running_relay(own_settings, events):
        for order in made:
            await add_captured(own_engine, order)
        with python_process("enrollment_svc", process_env(own_settings, events, fault="consumer_after_commit"),
                            log) as crashed:
            assert await wait_exit(crashed, 30) == -9, log.read_text()

        # Before any restart: the one delivery was committed, and never acked.
        fulfilled = [o for o in made if (await order_row(own_engine, o.order_token)).status == "fulfilled"]
        assert len(fulfilled) == 1, f"{len(fulfilled)} orders fulfilled when the consumer was killed"
        [killed] = fulfilled
        [enrollment] = await enrollments_of(own_engine, killed.order_token)
        assert sum([len(await enrollments_of(own_engine, o.order_token)) for o in made]) == 1
        async with jetstream(own_settings.nats_url) as js:
            info = await js.consumer_info(events.stream, events.durable)
            delivered = await js.get_msg(events.stream, info.delivered.stream_seq)
        assert (info.delivered.consumer_seq, info.ack_floor.consumer_seq) == (1, 0), "one delivery, not acked"
        assert json.loads(delivered.data)["order_token"] == killed.order_token

        metrics_port = free_port()
        env = process_env(own_settings, events) | {"ENROLLMENT_METRICS_PORT": str(metrics_port)}
        with python_process("enrollment_svc", env, log) as service:
            await wait_for(lambda: all_fulfilled(own_engine, made), 30, "every order fulfilled")
            async with jetstream(own_settings.nats_url) as js:
                async def settled() -> bool:
                    info = await js.consumer_info(events.stream, events.durable)
                    return info.num_ack_pending == 0 and info.num_pending == 0
                await wait_for(settled, events.ack_wait * 3 + 10, "every delivery acked")
                info = await js.consumer_info(events.stream, events.durable)
                captured = [m for m in await stream_messages(js, events)
                            if m.subject == events.wire_subject(CAPTURED_SUBJECT)]
                assert info.delivered.consumer_seq > len(captured)  # the unacked one came again
            outcomes = await enrollment_outcomes(metrics_port)
            # the restart enrolled only the two others; the redelivery found the committed enrollment
            assert outcomes["enrolled"] == len(made) - 1 and outcomes["already_enrolled"] >= 1, outcomes
            service.terminate()
            assert await wait_exit(service, 15) == 0, log.read_text()  # graceful stop on SIGTERM
    await assert_one_enrollment_each(own_engine, made)
    assert (await enrollments_of(own_engine, killed.order_token))[0].enrollment_id == enrollment.enrollment_id


async def test_a_fault_without_the_test_switch_is_ignored_with_a_warning(own_engine, own_settings, events, tmp_path):
    order = await make_order(own_engine)
    log = tmp_path / "enrollment.log"
    env = process_env(own_settings, events) | {FAULT_ENV: "consumer_after_commit"}  # no CHECKOUT_TEST_HOOKS
    async with running_relay(own_settings, events):
        await add_captured(own_engine, order)
        with python_process("enrollment_svc", env, log) as service:
            await wait_for(lambda: all_fulfilled(own_engine, [order]), 30, "the order fulfilled")
            async with jetstream(own_settings.nats_url) as js:
                async def acked() -> bool:
                    assert service.poll() is None, f"killed by the fault point: {log.read_text()}"
                    return (await js.consumer_info(events.stream, events.durable)).ack_floor.consumer_seq == 1
                await wait_for(acked, 30, "the delivery acked (the ack comes after the fault point)")
            assert service.poll() is None, log.read_text()
            service.terminate()
            assert await wait_exit(service, 15) == 0, log.read_text()
    assert f"{FAULT_ENV} is set but {TEST_HOOKS_ENV} is not" in log.read_text()


@pytest.mark.slow
async def test_nats_restarted_mid_stream_loses_nothing(engine, settings, events, tmp_path):
    server = PrivateNats(tmp_path / "nats")
    server.start()
    embedded = unique_events(stream=events.stream, dlq_stream=events.dlq_stream, subject_prefix=events.subject_prefix,
                             relay_lock_key=events.relay_lock_key, relay_embedded=True)
    made = [await make_order(engine, months=(1, 3, 6)[n % 3]) for n in range(12)]
    log = tmp_path / "enrollment.log"
    try:
        with python_process("enrollment_svc", process_env(settings, embedded, nats_url=server.url), log):
            for order in made[:4]:
                await add_captured(engine, order)
            await wait_for(lambda: _positive(fulfilled_count(engine, made[:4])), 20, "the stream to start flowing")
            await asyncio.to_thread(server.stop)  # mid-stream
            for order in made[4:8]:
                await add_captured(engine, order)  # written while NATS is down: they wait in the outbox
            await asyncio.sleep(1.5)
            await asyncio.to_thread(server.start)  # same port, same store
            for order in made[8:]:
                await add_captured(engine, order)
            await wait_for(lambda: all_fulfilled(engine, made), 45, "every order fulfilled after the restart")
        async with jetstream(server.url) as js:
            captured = [m for m in await stream_messages(js, events)
                        if m.subject == events.wire_subject(CAPTURED_SUBJECT)]
        mine = {order.order_token for order in made}
        tokens = [token for token in (json.loads(m.data)["order_token"] for m in captured) if token in mine]
        assert sorted(tokens) == sorted(mine)  # each once: nothing lost, no copies
    finally:
        await asyncio.to_thread(server.stop)
    await assert_one_enrollment_each(engine, made)
    async with engine.connect() as conn:
        unpublished = (await conn.execute(select(outbox.c.id).where(
            outbox.c.aggregate_id.in_([o.order_token for o in made]), outbox.c.published_at.is_(None)))).all()
    assert unpublished == []


async def test_replay_dlq_command(engine, settings, events, tmp_path):
    order = await make_order(engine, status="awaiting_payment")
    await dead_letter_service.park(engine, stream=events.stream, consumer=events.durable, stream_seq=7,
                                   subject=events.wire_subject(CAPTURED_SUBJECT),
                                   payload=json.dumps(captured_payload(order)).encode(), deliveries=3, error="not paid")
    async with engine.connect() as conn:
        letter_id = (await conn.execute(select(dead_letters.c.dead_letter_id)
                                        .where(dead_letters.c.stream == events.stream))).scalar_one()

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "enrollment_svc.replay_dlq", *args], cwd=ROOT,
                              env=process_env(settings, events), capture_output=True, text=True, timeout=60)

    assert run().returncode == 2  # neither --all nor an id
    refused = await asyncio.to_thread(run, letter_id)
    assert refused.returncode == 1 and "not replayed" in refused.stdout and "not paid" in refused.stdout
    async with engine.begin() as conn:
        await conn.execute(update(orders).where(orders.c.order_token == order.order_token).values(status="paid"))
    done = await asyncio.to_thread(run, letter_id)
    assert done.returncode == 0 and f"{letter_id}: replayed" in done.stdout, done.stdout + done.stderr
    assert len(await enrollments_of(engine, order.order_token)) == 1


async def enrollment_outcomes(metrics_port: int) -> dict[str, float]:
    """checkout_enrollment_events_total by outcome, from the service's /metrics."""
    def scrape() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as reply:
            return reply.read().decode()

    outcomes = collections.Counter()
    for family in text_string_to_metric_families(await asyncio.to_thread(scrape)):
        if family.name == "checkout_enrollment_events":
            for sample in family.samples:
                if sample.name == "checkout_enrollment_events_total":
                    outcomes[sample.labels["outcome"]] += sample.value
    return outcomes


async def _positive(awaitable) -> bool:
    return (await awaitable) > 0
