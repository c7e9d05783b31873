"""The servers of `make run-ha` (devstack/ha.py), on free ports in a temp dir: the PostgreSQL
replica streams from the primary and refuses writes; the NATS cluster keeps a replicas-3 stream
writable and whole when its leader is SIGKILLed."""

from __future__ import annotations

import asyncio
import shutil
import time

import nats
import psycopg
import pytest
from nats.js.api import StreamConfig

from devstack import ha
from devstack.layout import RunDir
from devstack.ports import free_ports
from devstack.processes import Supervisor

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


@pytest.fixture
def servers(tmp_path):
    supervisor = Supervisor(RunDir(tmp_path / ".run"), out=None)
    p = free_ports(9)
    ports = ha.HaPorts(postgres=p[0], postgres_replica=p[1], redis=p[2], nats=tuple(p[3:6]), nats_routes=tuple(p[6:9]))
    try:
        env = ha.start_servers(supervisor, ports, fsync=False)
        yield supervisor, env
    finally:
        supervisor.stop_all()
        shutil.rmtree(supervisor.run_dir.private_tmp(), ignore_errors=True)


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def test_the_replica_streams_from_the_primary_and_refuses_writes(servers):
    _, env = servers
    with psycopg.connect(_libpq(env["DATABASE_URL"]), autocommit=True) as primary:
        primary.execute("CREATE TABLE ha_probe (n int)")
        primary.execute("INSERT INTO ha_probe VALUES (42)")
    with psycopg.connect(_libpq(env["READ_DATABASE_URL"]), autocommit=True) as replica:
        assert replica.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
        deadline, seen = time.monotonic() + 15, None
        while seen is None and time.monotonic() < deadline:
            try:
                seen = replica.execute("SELECT n FROM ha_probe").fetchone()
            except psycopg.errors.UndefinedTable:
                time.sleep(0.1)
        assert seen == (42,)
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            replica.execute("INSERT INTO ha_probe VALUES (1)")


async def _publish(js, subject: str, n: int) -> None:
    """Publish message n, retrying (same Nats-Msg-Id) while the stream elects a leader."""
    deadline = time.monotonic() + 30
    while True:
        try:
            await js.publish(subject, str(n).encode(), headers={"Nats-Msg-Id": f"m{n}"}, timeout=2)
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def test_a_replicas_3_stream_survives_its_leader_being_killed(servers):
    supervisor, env = servers
    assert env["NATS_REPLICAS"] == "3" and len(env["NATS_URL"].split(",")) == 3
    nc = await nats.connect(env["NATS_URL"].split(","), connect_timeout=2, reconnect_time_wait=0.2)
    try:
        js = nc.jetstream()
        deadline = time.monotonic() + 20
        while True:  # the cluster elects its meta leader a moment after the nodes are up
            try:
                await js.add_stream(StreamConfig(name="HA", subjects=["ha.>"], num_replicas=3))
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
        for n in range(20):
            await _publish(js, "ha.x", n)
        info = await js.stream_info("HA")
        assert info.cluster is not None and len(info.cluster.replicas or []) == 2
        leader = info.cluster.leader
        supervisor.kill(f"nats_{leader}")
        for n in range(20, 40):
            await _publish(js, "ha.x", n)
        info = await js.stream_info("HA")
        assert info.state.messages == 40 and info.cluster is not None and info.cluster.leader != leader
    finally:
        await nc.close()
