"""Prometheus metrics shared by every service, and the HTTP endpoint that exposes them."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import prometheus_client

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
