"""What `python -m devstack run` starts after the servers. Edit these lists as the project grows.

Each entry runs only if its `requires` path exists (relative to the project root), so the stack
works while packages are still being written. "python" in an argv means this interpreter.
Every process gets DATABASE_URL, REDIS_URL and NATS_URL in its environment, plus `env`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from common.settings import load_settings

PYTHON = "python"


@dataclass(frozen=True)
class Step:
    """Runs to completion, in order, before any service starts; must exit 0."""

    name: str
    argv: tuple[str, ...]
    requires: str


@dataclass(frozen=True)
class Service:
    name: str
    argv: tuple[str, ...]
    port: int
    requires: str
    # Ready when this URL answers 200; without one, when the port accepts connections.
    health_url: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)


PREPARE: list[Step] = [
    Step(
        "migrate",  # each service's role and schema, then its own migration tree
        (PYTHON, "-m", "common.migrations", "setup"),
        requires="migrations/alembic.ini",
    ),
    Step("seed", (PYTHON, "-m", "cart_svc.seed"), requires="cart_svc/seed.py"),
]

# The service whose URL `run` announces once everything is ready.
EDGE = "edge"


def edge_domain(env: Mapping[str, str]) -> str:
    return load_settings(env).edge_domain


def edge_tls_port(env: Mapping[str, str]) -> int:
    return load_settings(env).edge_tls_port


def dedicated_hosts(env: Mapping[str, str]) -> tuple[str, str]:
    """The edge's cart and payment hosts (`*.localhost` resolves to this machine)."""
    domain = load_settings(env).edge_domain
    return f"cart.{domain}", f"pay.{domain}"


def services(env: Mapping[str, str]) -> list[Service]:
    """Ports come from the same settings the services read (common/settings.py), so an override
    such as CART_GRPC_PORT=6000 moves both the service and the readiness check."""
    settings = load_settings(env)
    edge_port = settings.edge_port
    emulator_port = settings.gateway_emulator_port
    # the edge's spans, stored beside the services' (none to receive when a collector is set)
    receiver = [] if settings.otel_exporter_otlp_endpoint else [
        Service("trace_receiver", (PYTHON, "-m", "devstack.trace_receiver"), settings.trace_receiver_port,
                "devstack/trace_receiver.py"),
    ]
    return [
        *receiver,
        Service("cart_svc", (PYTHON, "-m", "cart_svc"), settings.cart_grpc_port, "cart_svc/__main__.py"),
        Service("order_svc", (PYTHON, "-m", "order_svc"), settings.order_grpc_port, "order_svc/__main__.py"),
        Service("payment_svc", (PYTHON, "-m", "payment_svc"), settings.payment_grpc_port, "payment_svc/__main__.py"),
        Service("enrollment_svc", (PYTHON, "-m", "enrollment_svc"), settings.enrollment_grpc_port,
                "enrollment_svc/__main__.py"),
        Service(
            "gateway_emulator",
            (PYTHON, "-m", "gateway_emulator"),
            emulator_port,
            "gateway_emulator/__main__.py",
            health_url=f"http://127.0.0.1:{emulator_port}/_emulator/health",
        ),
        Service(
            EDGE,
            (PYTHON, "-m", "edge", "run"),
            edge_port,
            "edge/__main__.py",
            health_url=f"http://127.0.0.1:{edge_port}/healthz",
        ),
    ]

