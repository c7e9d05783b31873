"""Point-in-time recovery: a base backup (devstack/backup.py) copied into a new data directory,
replayed from the WAL archive up to a target time, then promoted to a server of its own.

The source server is never touched; the copy does not archive (it would write into the source's
archive) until someone turns archiving on for it.
"""

from __future__ import annotations

import datetime
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import psycopg

from devstack import wal_archive
from devstack.account import Account, private_dir
from devstack.backup import BaseBackup
from devstack.postgres import HOST, SUPERUSER
from devstack.probes import Probe
from devstack.processes import ProcessSpec


def parse_target(text: str) -> datetime.datetime:
    """ISO 8601 (`2026-12-03T10:45:00Z`, `2026-12-03 10:45:00+05:30`); without an offset, UTC."""
    moment = datetime.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=datetime.UTC)


def choose(backups: list[BaseBackup], target: datetime.datetime) -> BaseBackup:
    """The newest backup finished before `target` (replay starts where the backup ends)."""
    before = [backup for backup in backups if backup.finished_at <= target]
    if not before:
        first = f"; the oldest finished at {backups[0].finished_at.isoformat()}" if backups else ""
        raise LookupError(f"no base backup finished before {target.isoformat()}{first}")
    return before[-1]


def binaries_major(bin_dir: Path) -> int:
    found = re.search(r"(\d+)", subprocess.run([str(bin_dir / "postgres"), "--version"], capture_output=True,
                                               text=True, check=True, timeout=30).stdout)
    if found is None:
        raise RuntimeError(f"cannot tell the version of {bin_dir / 'postgres'}")
    return int(found.group(1))


def prepare(backup: BaseBackup, target: datetime.datetime, data: Path, bin_dir: Path, *,
            account: Account | None, archive: Path | None = None) -> Path:
    """Copy `backup` into `data` (which must not exist) and configure recovery to `target` from the
    WAL archive (`archive`, else the backup's own), promoting when it is reached. Returns `data`."""
    archive = archive or backup.wal_archive
    if archive is None:
        raise ValueError(f"{backup.path}: the server did not archive its WAL when this backup was taken; "
                         "it restores only to its own end (copy its data/ directory), not to a point in time")
    if not archive.is_dir():
        raise FileNotFoundError(f"WAL archive {archive} is not there")
    major = binaries_major(bin_dir)
    if backup.server_version // 10000 != major:
        raise RuntimeError(f"the backup is of PostgreSQL {backup.server_version // 10000}, the binaries in {bin_dir} "
                           f"are {major}: restore with that server's own binaries (--bin-dir)")
    if data.exists():
        raise FileExistsError(f"{data} exists: a restore goes into a new data directory")
    shutil.copytree(backup.data, data, symlinks=True)
    (data / "recovery.signal").touch()
    with (data / "postgresql.auto.conf").open("a") as conf:
        conf.write(
            "\n# devstack restore: point-in-time recovery\n"
            f"restore_command = '{_conf_quote(wal_archive.restore_command(archive))}'\n"
            f"recovery_target_time = '{target.isoformat()}'\n"
            "recovery_target_action = 'promote'\n"
            "archive_mode = 'off'\n"
        )
    _hand_over(data, account)
    return data


def server_spec(data: Path, port: int, bin_dir: Path, *, account: Account | None, name: str = "postgres-restored",
                ) -> ProcessSpec:
    """The restored server on 127.0.0.1:`port`; ready once recovery is over and it is promoted."""
    return ProcessSpec(
        name=name,
        argv=(str(bin_dir / "postgres"), "-D", str(data), "-p", str(port), "-c", f"listen_addresses={HOST}",
              "-c", "unix_socket_directories="),
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "TZ": "UTC"},
        cwd=data.parent,
        port=port,
        host=HOST,
        ready=promoted(HOST, port),
        stop_signal=signal.SIGINT,
        account=account,
    )


def promoted(host: str, port: int) -> Probe:
    def probe() -> bool:
        try:
            with psycopg.connect(host=host, port=port, user=SUPERUSER, dbname="postgres", connect_timeout=2) as conn:
                row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
                return row is not None and not row[0]
        except psycopg.Error:
            return False

    return probe


def restore_root(state_dir: Path, account: Account | None) -> Path:
    """A new directory for one restore (its data/ and its logs), reachable by the server's account."""
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    root = state_dir / "restores" / stamp
    if root.exists():
        raise FileExistsError(f"{root} exists: wait a second")
    return private_dir(root, account)


def _conf_quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "''")


def _hand_over(data: Path, account: Account | None) -> None:
    """PostgreSQL wants its data directory 0700 and owned by the account it runs as."""
    data.chmod(0o700)
    if account is None:
        return
    for path in (data, *data.rglob("*")):
        os.lchown(path, account.uid, account.gid)
