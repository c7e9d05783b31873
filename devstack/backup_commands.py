"""`python -m devstack backup` and `python -m devstack restore` (`make backup`, `make restore`).

The server is DATABASE_URL's when set, else the embedded PostgreSQL of `make run` (which archives
its WAL into <state>/backups/wal, devstack/wal_archive.py). Backups go to <state>/backups/base and
restores to <state>/restores/<stamp>; <state> is .run (or the server's private temp directory when
the project is out of its account's reach).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import psycopg

from devstack import backup as backups
from devstack import postgres, restore, wal_archive
from devstack.layout import RunDir
from devstack.processes import ProcessSpec, StartupError, Supervisor, tail
from devstack.servers import DATABASE_URL, DEV_PORTS
from devstack.stopflag import StopFlag

RESTORE_PORT = 55433


def run_backup(base_dir: Path, *, wal_archive_dir: Path | None, keep: int | None) -> int:
    cluster = postgres.locate(RunDir.for_base(base_dir))
    state = cluster.root.parent
    external = os.environ.get(DATABASE_URL)
    conninfo = backups.libpq_url(external or postgres.url(DEV_PORTS.postgres, "postgres"))
    archive = wal_archive_dir or (None if external else wal_archive.archive_dir(state))
    try:
        taken = backups.take(conninfo, state / "backups" / "base", cluster.bin, wal_archive=archive)
        if taken.archiving:
            segment = backups.archive_now(conninfo)
            print(f"WAL archived up to segment {segment}")
    except (psycopg.OperationalError, TimeoutError, RuntimeError) as error:
        where = "DATABASE_URL" if external else f"the embedded server on port {DEV_PORTS.postgres} (`make run` first)"
        print(f"devstack backup: {where}: {error}".strip(), file=sys.stderr)
        return 1
    print(f"base backup: {taken.path} (finished {taken.finished_at.isoformat()})")
    if not taken.archiving:
        print("!! this server does not archive its WAL (archive_mode/archive_command): the backup restores to its "
              "own end only, not to a point in time; see docs/OPERATIONS.md, \"Backups and point-in-time recovery\"")
    elif taken.wal_archive is None:
        print("!! the server archives WAL, but where is unknown here: pass --wal-archive DIR (as this machine sees it) "
              "so that `restore` finds it")
    else:
        print(f"WAL archive: {taken.wal_archive}")
    if keep:
        for path in backups.prune(state / "backups" / "base", keep, cluster.bin):
            print(f"deleted the older backup {path}")
    return 0


def run_restore(base_dir: Path, target_text: str, *, port: int | None, bin_dir: Path | None,
                wal_archive_dir: Path | None) -> int:
    cluster = postgres.locate(RunDir.for_base(base_dir))
    state = cluster.root.parent
    binaries = bin_dir or cluster.bin
    root: Path | None = None
    try:
        target = restore.parse_target(target_text)
        chosen = restore.choose(backups.all_backups(state / "backups" / "base"), target)
        root = restore.restore_root(state, cluster.account)
        data = restore.prepare(chosen, target, root / "data", binaries, account=cluster.account,
                               archive=wal_archive_dir)
    except (ValueError, LookupError, OSError, RuntimeError) as error:
        if root is not None:
            shutil.rmtree(root, ignore_errors=True)
        print(f"devstack restore: {error}", file=sys.stderr)
        return 1
    print(f"restoring {chosen.path} to {target.isoformat()} into {data}")
    if port is None:
        print(f"start it with: {binaries / 'postgres'} -D {data} -p <port> (as the data directory's owner)")
        return 0
    return _serve(RunDir(root / "run"), restore.server_spec(data, port, binaries, account=cluster.account))


def _serve(run_dir: RunDir, spec: ProcessSpec) -> int:
    """Recover, promote, then serve until Ctrl-C (the data directory stays)."""
    flag = StopFlag().install()
    supervisor = Supervisor(run_dir, abort=flag.is_set)
    try:
        supervisor.start([spec], timeout=600)
        print(f"ready: postgresql://{postgres.SUPERUSER}@{spec.host}:{spec.port}/ holds the data as of the target; "
              "Ctrl-C stops it", flush=True)
        while not flag.wait(0.5):
            if supervisor.newly_exited():
                print(f"!! the restored server exited; its log: {run_dir.log(spec.name)}", file=sys.stderr)
                return 1
        return 0
    except StartupError as error:
        print(f"!! {error}", file=sys.stderr)
        if error.log is not None:
            print(tail(error.log), end="", file=sys.stderr)
        return 1
    finally:
        supervisor.stop_all()
