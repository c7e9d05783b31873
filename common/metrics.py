"""Prometheus metrics shared by every service, and the HTTP endpoint that exposes them.

What each alert and dashboard panel reads is listed in docs/OPERATIONS.md; tests/unit/deploy/
checks that every metric name the rules and dashboards use is defined here or by a service."""

from __future__ import annotations

import asyncio
import json
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import prometheus_client
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool

if TYPE_CHECKING:
    from common.readiness import Readiness

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
CACHE_LOOKUPS = prometheus_client.Counter(
    "checkout_cache_lookups_total",
    "Cache reads, by entry kind (Redis: cart, estimate, discounts; in-process: catalog) and result "
    "(hit; miss: absent, stale or Redis down)",
    ["cache", "result"],
)


class _PoolCollector(Collector):
    """Each engine's connection pool, read when Prometheus scrapes (nothing per request): the
    connections checked out, the pool's size, the connections open beyond it and its hard limit
    (size + max overflow), summed per
    service over the engines a process holds (the service's own, a worker's small one)."""

    def __init__(self) -> None:
        self._engines: weakref.WeakKeyDictionary[AsyncEngine, str] = weakref.WeakKeyDictionary()

    def watch(self, engine: AsyncEngine, service: str) -> None:
        self._engines[engine] = service

    def collect(self) -> Iterator[GaugeMetricFamily]:
        checked_out = GaugeMetricFamily("checkout_db_pool_checked_out", "Pooled database connections in use",
                                        labels=["service"])
        size = GaugeMetricFamily("checkout_db_pool_size", "Connections the pool keeps open", labels=["service"])
        overflow = GaugeMetricFamily("checkout_db_pool_overflow", "Connections open beyond the pool's size",
                                     labels=["service"])
        limit = GaugeMetricFamily("checkout_db_pool_max", "Connections the pool may hold at once (size + overflow); "
                                  "past it a request waits, then fails", labels=["service"])
        totals: dict[str, list[int]] = {}
        for engine, service in list(self._engines.items()):
            pool = engine.sync_engine.pool
            if not isinstance(pool, QueuePool):
                continue
            total = totals.setdefault(service, [0, 0, 0, 0])
            total[0] += pool.checkedout()
            total[1] += pool.size()
            total[2] += max(0, pool.overflow())  # negative while the pool has not opened `size` yet
            total[3] += pool.size() + max(0, pool._max_overflow)
        for service, (used, kept, over, most) in sorted(totals.items()):
            checked_out.add_metric([service], used)
            size.add_metric([service], kept)
            overflow.add_metric([service], over)
            limit.add_metric([service], most)
        yield from (checked_out, size, overflow, limit)


_POOLS = _PoolCollector()
prometheus_client.REGISTRY.register(_POOLS)


def watch_pool(engine: AsyncEngine, service: str) -> None:
    _POOLS.watch(engine, service)


# -- events ---------------------------------------------------------------------------------------
EVENTS_PUBLISHED = prometheus_client.Counter(
    "checkout_events_published_total", "Outbox events the relay published (first PubAck), by schema and subject",
    ["schema", "subject"],
)
OUTBOX_LAG = prometheus_client.Gauge(
    "checkout_outbox_lag_seconds", "Age of the oldest outbox row the leading relay has read and not yet published "
    "(0: none); from the relay's own reads, no extra query", ["schema"],
)
DEAD_LETTERS_PARKED = prometheus_client.Gauge(
    "checkout_dead_letters_parked", "Dead letters parked and not replayed, counted by the leading relay every "
    "30 s (common/outbox_relay.py DEAD_LETTER_COUNT_SECONDS)", ["schema"],
)
CONSUMER_LAG = prometheus_client.Histogram(
    "checkout_event_consumer_lag_seconds", "Event stored in the stream → a consumer starts handling it, by consumer",
    ["consumer"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
CONSUMER_PENDING = prometheus_client.Gauge(
    "checkout_event_consumer_pending", "Messages the consumer has not received yet, as of its last delivery",
    ["consumer"],
)


def serve_metrics(port: int, host: str = "127.0.0.1", readiness: Readiness | None = None) -> None:
    """`/metrics`, `/readyz` (common/readiness.py) and `/healthz` on `port`, in a thread of their own;
    the readiness checks run on the service's event loop (this must be called from it).
    Port 0 turns the endpoint off (tests run many services in one process)."""
    if not port:
        return
    loop = asyncio.get_running_loop() if readiness is not None else None
    metrics = prometheus_client.make_wsgi_app()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/healthz":
            return _json(start_response, 200, {"status": "live"})
        if path == "/readyz" and readiness is not None and loop is not None:
            try:
                report = asyncio.run_coroutine_threadsafe(readiness.report(), loop).result(timeout=READYZ_TIMEOUT_S)
            except Exception:  # the loop is stuck or stopping: not ready
                return _json(start_response, 503, {"ready": False, "dependencies": {"process": "not answering"}})
            return _json(start_response, 200 if report.ready else 503, report.to_json())
        return metrics(environ, start_response)  # type: ignore[no-any-return]

    server = make_server(host, port, app, _ThreadingServer, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True).start()


READYZ_TIMEOUT_S = 3.0
_REASONS = {200: "200 OK", 503: "503 Service Unavailable"}


def _json(start_response: Callable[..., Any], status: int, body: dict[str, Any]) -> list[bytes]:
    encoded = json.dumps(body).encode()
    start_response(_REASONS[status], [("Content-Type", "application/json"), ("Cache-Control", "no-store"),
                                      ("Content-Length", str(len(encoded)))])
    return [encoded]


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # probes every few seconds: not worth a log line each
