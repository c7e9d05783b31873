"""devstack's embedded PostgreSQL, Redis and NATS: they start, answer real clients, and stop.

Always on free ports in temp dirs (machine=None, env={}): this machine's own servers on
5432/6379/4222 must never be used or touched here.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import psutil
import pytest

from devstack import nats as dev_nats
from devstack import pidfiles
from devstack import redis as dev_redis
from devstack.layout import RunDir
from devstack.ports import free_ports, port_in_use
from devstack.processes import Supervisor, stop_recorded
from devstack.servers import DEV_PORTS, STANDARD_PORTS, ServerURLs, ensure_servers

PROJECT = Path(__file__).resolve().parents[3]

pytestmark = pytest.mark.timeout(120)

URL_VARIABLES = ("DATABASE_URL", "REDIS_URL", "NATS_URL")


def port_of(url: str) -> int:
    port = urlsplit(url).port
    assert port is not None, url
    return port


def ports_of(urls: ServerURLs) -> list[int]:
    return [port_of(url) for url in (urls.database_url, urls.redis_url, urls.nats_url)]


def libpq_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def select_1(database_url: str) -> int:
    import psycopg

    with psycopg.connect(libpq_url(database_url), connect_timeout=5) as conn:
        row = conn.execute("SELECT 1").fetchone()
    assert row is not None
    return int(row[0])


def redis_ping(redis_url: str) -> bool:
    import redis

    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    try:
        return bool(client.ping())
    finally:
        client.close()


def jetstream_account_info(nats_url: str) -> object:
    import nats

    async def query() -> object:
        nc = await nats.connect(nats_url, connect_timeout=5, allow_reconnect=False)
        try:
            return await nc.jetstream().account_info()
        finally:
            await nc.close()

    return asyncio.run(query())


def wait_until(condition: object, timeout: float, what: str) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_embedded_servers_answer_then_stop(tmp_path: Path) -> None:
    urls = ensure_servers(tmp_path, env={}, machine=None)
    try:
        assert urls.sources == {"postgres": "embedded", "redis": "embedded", "nats": "embedded"}
        ports = ports_of(urls)
        assert not set(ports) & {*vars(STANDARD_PORTS).values(), *vars(DEV_PORTS).values()}
        assert urls.database_url.startswith("postgresql+psycopg://postgres@127.0.0.1:")
        assert urls.database_url.endswith("/checkout")

        assert select_1(urls.database_url) == 1
        assert redis_ping(urls.redis_url)
        assert jetstream_account_info(urls.nats_url) is not None

        records = {record.name: record for record in pidfiles.read_all(RunDir.for_base(tmp_path))}
        assert set(records) == {"postgres", "redis", "nats"}
        if os.geteuid() == 0:
            # PostgreSQL refuses root; devstack drops it to an unprivileged user.
            assert psutil.Process(records["postgres"].pid).uids().real != 0
    finally:
        urls.stop()

    for port in ports:
        assert not port_in_use(port), f"port {port} still answers after stop()"
    assert pidfiles.read_all(RunDir.for_base(tmp_path)) == []
    assert not any(path.exists() for path in urls.data_dirs)
    urls.stop()  # idempotent


def test_postgres_data_dir_is_reused(tmp_path: Path) -> None:
    first = ensure_servers(tmp_path, env={}, machine=None, keep_data=True)
    try:
        import psycopg

        with psycopg.connect(libpq_url(first.database_url)) as conn:
            conn.execute("CREATE TABLE kept (value text)")
            conn.execute("INSERT INTO kept VALUES ('still here')")
    finally:
        first.stop()

    second = ensure_servers(tmp_path, env={}, machine=None, keep_data=False)
    try:
        with psycopg.connect(libpq_url(second.database_url)) as conn:
            row = conn.execute("SELECT value FROM kept").fetchone()
        assert row == ("still here",)
    finally:
        second.stop()


def test_url_variables_win_and_start_nothing(tmp_path: Path) -> None:
    env = {
        "DATABASE_URL": "postgresql+psycopg://app@db.example:5432/checkout",
        "REDIS_URL": "redis://cache.example:6379/2",
        "NATS_URL": "nats://bus.example:4222",
    }
    urls = ensure_servers(tmp_path, env=env, machine=None)
    try:
        assert urls.as_env() == env
        assert set(urls.sources.values()) == {"env"}
        assert pidfiles.read_all(RunDir.for_base(tmp_path)) == []
    finally:
        urls.stop()


def test_stop_recorded_stops_what_pid_files_name(tmp_path: Path) -> None:
    run_dir = RunDir.for_base(tmp_path)
    supervisor = Supervisor(run_dir, out=None)
    redis_port, nats_port = free_ports(2)
    children = supervisor.start(
        [
            dev_redis.spec(redis_port, run_dir.root / "redis"),
            dev_nats.spec(nats_port, run_dir.root / "nats"),
        ]
    )
    # A pid file whose pid now belongs to some other process: must not be signalled.
    bystander = subprocess.Popen(["sleep", "60"], start_new_session=True)
    forged = pidfiles.describe("bystander", bystander.pid, ("sleep", "60"), stop_signal=15)
    pidfiles.write(run_dir, pidfiles.Record(**{**vars(forged), "create_time": 1.0}))
    try:
        stopped = stop_recorded(run_dir, grace=5, out=None)

        assert sorted(stopped) == ["nats", "redis"]
        for child in children:
            assert child.popen.wait(timeout=5) is not None
        assert not port_in_use(redis_port) and not port_in_use(nats_port)
        assert bystander.poll() is None, "stop_recorded signalled a process it did not start"
        assert pidfiles.read_all(run_dir) == []
        assert list(run_dir.pids.iterdir()) == []
    finally:
        bystander.kill()
        bystander.wait()
        supervisor.stop_all()


def test_cli_servers_then_stop_from_another_process(tmp_path: Path) -> None:
    env_file = tmp_path / "servers.env"
    env = {key: value for key, value in os.environ.items() if key not in URL_VARIABLES}
    cli = [sys.executable, "-m", "devstack", "--base-dir", str(tmp_path)]
    server = subprocess.Popen(
        [*cli, "servers", "--env-file", str(env_file), "--free-ports"],
        cwd=PROJECT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        wait_until(lambda: env_file.exists() or server.poll() is not None, 60, "the env file")
        assert server.poll() is None, server.communicate()[0]
        values = dict(line.split("=", 1) for line in env_file.read_text().splitlines())
        assert set(values) == set(URL_VARIABLES)
        assert select_1(values["DATABASE_URL"]) == 1
        assert redis_ping(values["REDIS_URL"])

        status = subprocess.run([*cli, "status"], cwd=PROJECT, capture_output=True, text=True)
        assert status.returncode == 0, status.stdout + status.stderr
        assert "postgres" in status.stdout and "alive" in status.stdout

        stop = subprocess.run([*cli, "stop"], cwd=PROJECT, capture_output=True, text=True)
        assert stop.returncode == 0, stop.stdout + stop.stderr
        output, _ = server.communicate(timeout=30)
        assert server.returncode == 0, output
        for key in URL_VARIABLES:
            assert not port_in_use(port_of(values[key]))
        assert not env_file.exists()
        assert pidfiles.read_all(RunDir.for_base(tmp_path)) == []
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
        stop_recorded(RunDir.for_base(tmp_path), out=None)
        # `servers` keeps its data; here it is a throwaway in the private temp dir.
        shutil.rmtree(RunDir.for_base(tmp_path).private_tmp(), ignore_errors=True)


def test_the_migration_step_of_make_run_works_on_the_embedded_server(tmp_path: Path) -> None:
    """`python -m common.migrations setup` (make run's first step) on a fresh embedded PostgreSQL:
    each service's role then logs in (trust, no password) and sees its own schema."""
    import psycopg

    from common.settings import ROLES, SCHEMAS, SERVICES, load_settings

    urls = ensure_servers(tmp_path, env={}, machine=None)
    try:
        env = {key: value for key, value in os.environ.items() if not key.endswith("DATABASE_URL")}
        step = subprocess.run([sys.executable, "-m", "common.migrations", "setup"], cwd=PROJECT,
                              env=env | {"DATABASE_URL": urls.database_url}, capture_output=True, text=True,
                              timeout=120)
        assert step.returncode == 0, step.stdout + step.stderr
        settings = load_settings({"DATABASE_URL": urls.database_url})
        for service in SERVICES:
            with psycopg.connect(libpq_url(settings.service_database_url(service)), connect_timeout=5) as conn:
                row = conn.execute("SELECT current_user, count(*) FROM pg_tables WHERE schemaname = %s",
                                   (SCHEMAS[service],)).fetchone()
            assert row is not None and row[0] == ROLES[service] and row[1] >= 4, (service, row)
    finally:
        urls.stop()
