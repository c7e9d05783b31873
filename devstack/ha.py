"""`make run-ha`: the same processes as `make run`, each service twice, over servers that survive
losing one of theirs: three NATS nodes with routes (every stream at replicas 3) and a PostgreSQL
primary with a streaming replica.

The HA stack always starts its own servers (never the machine's nor *_URL ones), on HA_* ports
(HaPorts) that differ from `make run`'s embedded ones; the services keep their usual ports, and
replica i listens on each + i × REPLICA_PORT_STEP (common/settings.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from common.settings import load_settings
from devstack import nats, postgres, redis
from devstack.layout import RunDir
from devstack.pgstandby import PRIMARY_SETTINGS, base_backup
from devstack.processes import ProcessSpec, StartupError, Supervisor
from devstack.stack import Service

REPLICAS = 2
NATS_NODES = 3
REPLICATED = ("cart_svc", "order_svc", "payment_svc", "enrollment_svc")
PRIMARY = "postgres"
STANDBY = "postgres_replica"


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(",") if part.strip())


@dataclasses.dataclass(frozen=True)
class HaPorts:
    postgres: int = 55442
    postgres_replica: int = 55443
    redis: int = 56389
    nats: tuple[int, ...] = (54231, 54232, 54233)
    nats_routes: tuple[int, ...] = (54241, 54242, 54243)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> HaPorts:
        """HA_POSTGRES_PORT, HA_POSTGRES_REPLICA_PORT, HA_REDIS_PORT, HA_NATS_PORTS and
        HA_NATS_ROUTE_PORTS (three each, comma-separated) override the defaults."""
        default = cls()
        ports = cls(
            postgres=int(env.get("HA_POSTGRES_PORT") or default.postgres),
            postgres_replica=int(env.get("HA_POSTGRES_REPLICA_PORT") or default.postgres_replica),
            redis=int(env.get("HA_REDIS_PORT") or default.redis),
            nats=_ints(env.get("HA_NATS_PORTS") or "") or default.nats,
            nats_routes=_ints(env.get("HA_NATS_ROUTE_PORTS") or "") or default.nats_routes,
        )
        if len(ports.nats) != NATS_NODES or len(ports.nats_routes) != NATS_NODES:
            raise SystemExit(f"HA_NATS_PORTS and HA_NATS_ROUTE_PORTS need {NATS_NODES} ports each")
        return ports


def start_servers(supervisor: Supervisor, ports: HaPorts, *, fsync: bool = True,
                  timeout: float = 60.0) -> dict[str, str]:
    """Start the HA servers; returns the environment every process gets."""
    run_dir = supervisor.run_dir
    primary = postgres.locate(run_dir, "pg-ha-primary")
    postgres.init(primary, run_dir.log("postgres-initdb"), fsync=fsync)
    specs = [
        postgres.spec(primary, ports.postgres, fsync=fsync, name=PRIMARY, settings=PRIMARY_SETTINGS),
        redis.spec(ports.redis, run_dir.root / "redis-ha"),
        *(nats.cluster_spec(i, list(ports.nats), list(ports.nats_routes), run_dir.root / f"nats-ha-{nats.node_name(i)}")
          for i in range(NATS_NODES)),
    ]
    supervisor.start(specs, timeout=timeout)
    postgres.create_database(ports.postgres)
    supervisor.start([standby_spec(run_dir, ports, fsync=fsync)], timeout=timeout)
    replica_url = postgres.url(ports.postgres_replica)
    return {
        "DATABASE_URL": postgres.url(ports.postgres),
        "READ_DATABASE_URL": replica_url,
        "REDIS_URL": redis.url(ports.redis),
        "NATS_URL": nats.cluster_url(list(ports.nats)),
        "NATS_REPLICAS": str(NATS_NODES),
        "SERVICE_REPLICAS": str(REPLICAS),
    }


def standby_spec(run_dir: RunDir, ports: HaPorts, *, fsync: bool = True) -> ProcessSpec:
    """A fresh base backup of the running primary, as the spec of its standby."""
    replica = postgres.locate(run_dir, "pg-ha-replica")
    try:
        base_backup(replica, ports.postgres, run_dir.log("pg_basebackup"))
    except RuntimeError as error:
        raise StartupError(STANDBY, str(error), run_dir.log("pg_basebackup")) from error
    return postgres.spec(replica, ports.postgres_replica, fsync=fsync, name=STANDBY)


def replica_name(name: str, index: int) -> str:
    """cart_svc.1, cart_svc.2, …"""
    return f"{name}.{index + 1}"


def identity(name: str) -> str:
    """The process identity (certificate) a replica presents: its service's."""
    return name.split(".", 1)[0]


def replicated(services: list[Service], env: Mapping[str, str]) -> list[Service]:
    """Each service of REPLICATED as SERVICE_REPLICAS processes on their own ports; the rest once."""
    settings = load_settings(env)
    step = settings.replica_port_step
    out: list[Service] = []
    for service in services:
        if service.name not in REPLICATED:
            out.append(service)
            continue
        short = service.name.removesuffix("_svc")
        grpc_port, metrics_port = settings.grpc_port(short), settings.metrics_port(short)
        for i in range(settings.service_replicas):
            ports = {f"{short.upper()}_GRPC_PORT": str(grpc_port + i * step),
                     f"{short.upper()}_METRICS_PORT": str(metrics_port + i * step if metrics_port else 0)}
            out.append(dataclasses.replace(service, name=replica_name(service.name, i), port=grpc_port + i * step,
                                           env={**service.env, **ports}))
    return out

