"""SPLIT_WORKERS=1 `make run`: each service as two processes, one answering calls (SERVICE_ROLE=api,
on the service's usual ports) and one running its relays, consumers and sweepers
(SERVICE_ROLE=workers, `<name>.workers`), so that events never wait behind requests in one event
loop (docs/PERFORMANCE.md). The workers process serves no gRPC: it is ready when its metrics port
answers, which sits one replica step past the service's last replica."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from common.settings import load_settings
from devstack.ha import REPLICATED, identity
from devstack.stack import Service

WORKERS_SUFFIX = ".workers"


def with_workers(services: list[Service], env: Mapping[str, str]) -> list[Service]:
    """Every process of a REPLICATED service (a replica too) as `api`, followed by its `workers` twin."""
    settings = load_settings(env)
    step = settings.replica_port_step
    out: list[Service] = []
    for service in services:
        if identity(service.name) not in REPLICATED:
            out.append(service)
            continue
        short = identity(service.name).removesuffix("_svc")
        metrics_port = settings.metrics_port(short)
        if not metrics_port:
            raise SystemExit(f"SPLIT_WORKERS needs {short.upper()}_METRICS_PORT: a workers process is ready "
                             "when its metrics port answers")
        index = settings.service_replicas + sum(1 for s in out if identity(s.name) == identity(service.name)
                                                and s.name.endswith(WORKERS_SUFFIX))
        ports = {f"{short.upper()}_GRPC_PORT": str(settings.grpc_port(short) + index * step),
                 f"{short.upper()}_METRICS_PORT": str(metrics_port + index * step)}
        out.append(dataclasses.replace(service, env={**service.env, "SERVICE_ROLE": "api"}))
        out.append(dataclasses.replace(service, name=service.name + WORKERS_SUFFIX, port=metrics_port + index * step,
                                       env={**service.env, **ports, "SERVICE_ROLE": "workers"}))
    return out
