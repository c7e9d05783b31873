"""A streaming replica of the embedded PostgreSQL (`make run-ha`): `pg_basebackup` from the same
binaries, made afresh at every start (the database is small; a fresh copy never diverges from a
primary that was re-created meanwhile). The primary keeps enough WAL for it (PRIMARY_SETTINGS)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from devstack.postgres import HOST, SUPERUSER, Cluster

# the defaults of PostgreSQL 16 already allow replication (wal_level=replica, max_wal_senders=10,
# hot_standby=on, and initdb's pg_hba trusts replication from 127.0.0.1); this keeps the WAL a
# replica that fell behind (or was down a while) still needs
PRIMARY_SETTINGS = ("wal_keep_size=256MB",)


def base_backup(replica: Cluster, primary_port: int, log: Path) -> None:
    """Copy the running primary into `replica`'s data directory and make it a standby of it."""
    shutil.rmtree(replica.data, ignore_errors=True)
    argv = [
        replica.exe("pg_basebackup"),
        "--host", HOST, "--port", str(primary_port), "--username", SUPERUSER,
        "--pgdata", str(replica.data),
        "--write-recovery-conf",  # standby.signal and primary_conninfo
        "--wal-method", "stream",
        "--checkpoint", "fast",
    ]
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as output:
        result = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                                check=False, timeout=120, **replica.run_kwargs())  # type: ignore[call-overload]
    if result.returncode != 0:
        raise RuntimeError(f"pg_basebackup failed with code {result.returncode}; see {log}")
