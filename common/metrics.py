"""Prometheus metrics shared by every service, and the HTTP endpoint that exposes them."""

from __future__ import annotations

import prometheus_client

RPC_HANDLED = prometheus_client.Counter(
    "checkout_rpc_handled_total", "RPCs completed, by method and checkout error code (0 = ok)", ["method", "code"]
)
RPC_SECONDS = prometheus_client.Histogram(
    "checkout_rpc_duration_seconds",
    "RPC handling time",
    ["method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
CACHE_ERRORS = prometheus_client.Counter("checkout_cache_errors_total", "Redis calls that failed (served from PostgreSQL)", ["operation"])


def serve_metrics(port: int, host: str = "127.0.0.1") -> None:
    """Port 0 turns the endpoint off (tests run many services in one process)."""
    if port:
        prometheus_client.start_http_server(port, addr=host)
