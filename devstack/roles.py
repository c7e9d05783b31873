"""SPLIT_WORKERS=1 `make run`: each service process beside a twin, one answering the students'
calls (SERVICE_ROLE=api, on the service's usual ports) and one running its relays, consumers and
sweepers and, for payment_svc, answering the gateways' webhooks (SERVICE_ROLE=workers,
`<name>.workers`, on the ports common/settings.py `workers_ports` gives), so that events never wait
behind requests in one event loop (docs/PERFORMANCE.md)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from common.settings import load_settings
from devstack.ha import REPLICATED, identity
from devstack.stack import Service

WORKERS_SUFFIX = ".workers"


def with_workers(services: list[Service], env: Mapping[str, str]) -> list[Service]:
    """Under SPLIT_WORKERS, every process of a REPLICATED service (each replica) as `api`, followed by
    its `workers` twin; otherwise `services` as they are."""
    settings = load_settings(env)
    if not settings.split_workers:
        return services
    out: list[Service] = []
    for service in services:
        name = identity(service.name)
        if name not in REPLICATED:
            out.append(service)
            continue
        short = name.removesuffix("_svc")
        twins = sum(1 for s in out if identity(s.name) == name and s.name.endswith(WORKERS_SUFFIX))
        grpc_port, metrics_port = settings.workers_ports(short)[twins]
        ports = {f"{short.upper()}_GRPC_PORT": str(grpc_port), f"{short.upper()}_METRICS_PORT": str(metrics_port)}
        out.append(dataclasses.replace(service, env={**service.env, "SERVICE_ROLE": "api"}))
        out.append(dataclasses.replace(service, name=service.name + WORKERS_SUFFIX, port=grpc_port,
                                       env={**service.env, **ports, "SERVICE_ROLE": "workers"}))
    return out
