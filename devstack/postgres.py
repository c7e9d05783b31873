"""Embedded PostgreSQL: initdb once, then run `postgres` in the foreground as an unprivileged user.

Data lives in `<run dir>/pg` (owned by `nobody` when we are root). If `nobody` cannot reach the
project (e.g. a project under /root, or pytest's 0700 temp root), it lives in
`/tmp/checkout-devstack-<uid>/<hash of run dir>/pg` instead; parents of the project are never
chmod-ed.
"""

from __future__ import annotations

import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from devstack import probes, wal_archive
from devstack.account import Account, can_traverse, private_dir, unprivileged_account
from devstack.layout import RunDir
from devstack.pgbin import bin_dir
from devstack.processes import ProcessSpec

HOST = "127.0.0.1"
SUPERUSER = "postgres"
DATABASE = "checkout"
# Unix socket paths are limited to ~107 bytes including `/.s.PGSQL.<port>`.
_MAX_SOCKET_DIR = 90


@dataclass(frozen=True)
class Cluster:
    root: Path
    bin: Path
    account: Account | None

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def sockets(self) -> Path:
        return self.root / "sock"

    def exe(self, name: str) -> str:
        return str(self.bin / name)

    def run_kwargs(self) -> dict[str, object]:
        # cwd: the unprivileged user may not be able to enter the caller's working directory.
        extra = self.account.popen_kwargs() if self.account is not None else {}
        return {"cwd": self.root, "env": _server_env(), **extra}


def locate(run_dir: RunDir, name: str = "pg") -> Cluster:
    account = unprivileged_account()
    home = run_dir.root if can_traverse(run_dir.root, account) else run_dir.private_tmp()
    root = private_dir(home / name, account)
    private_dir(root / "sock", account)
    return Cluster(root=root, bin=bin_dir(account, home), account=account)


def init(cluster: Cluster, log: Path, *, fsync: bool = True) -> None:
    """initdb unless the data directory already holds a cluster."""
    if (cluster.data / "PG_VERSION").exists():
        return
    argv = [
        cluster.exe("initdb"),
        "--pgdata", str(cluster.data),
        "--username", SUPERUSER,
        "--auth", "trust",
        "--encoding", "UTF8",
        "--locale", "C",
        "--no-instructions",
    ]
    if not fsync:
        argv.append("--no-sync")
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as output:
        result = subprocess.run(
            argv, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
            check=False, **cluster.run_kwargs(),  # type: ignore[call-overload]
        )
    if result.returncode != 0:
        raise RuntimeError(f"initdb failed with code {result.returncode}; see {log}")


def spec(cluster: Cluster, port: int, *, fsync: bool = True, archive: Path | None = None,
         name: str = "postgres", settings: tuple[str, ...] = ()) -> ProcessSpec:
    """`archive`: where to archive WAL (devstack/wal_archive.py); None: no archiving. `settings`:
    more `name=value` server settings."""
    sockets = str(cluster.sockets) if len(str(cluster.sockets)) <= _MAX_SOCKET_DIR else ""
    argv = (
        cluster.exe("postgres"),
        "-D", str(cluster.data),
        "-p", str(port),
        "-c", f"listen_addresses={HOST}",
        "-c", f"unix_socket_directories={sockets}",
        "-c", f"fsync={'on' if fsync else 'off'}",
        # bench/checkout.py times each enrollment to its commit (pg_xact_commit_timestamp).
        "-c", "track_commit_timestamp=on",
        *(part for setting in settings for part in ("-c", setting)),
        *(wal_archive.server_settings(archive) if archive is not None else ()),
    )
    return ProcessSpec(
        name=name,
        argv=argv,
        env=_server_env(),
        cwd=cluster.root,
        port=port,
        host=HOST,
        ready=probes.postgres_select1(HOST, port, SUPERUSER, "postgres"),
        # SIGTERM is a "smart" shutdown that waits for every client to disconnect.
        stop_signal=signal.SIGINT,
        account=cluster.account,
    )


def create_database(port: int, name: str = DATABASE, host: str = HOST) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(
        host=host, port=port, user=SUPERUSER, dbname="postgres", autocommit=True, connect_timeout=5
    ) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def url(port: int, database: str = DATABASE, host: str = HOST) -> str:
    return f"postgresql+psycopg://{SUPERUSER}@{host}:{port}/{database}"


def _server_env() -> dict[str, str]:
    # A minimal environment: root's HOME or PG* variables must not leak into the server.
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "TZ": "UTC"}
