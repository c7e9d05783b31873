"""Readiness against the real servers: ready only when the database and NATS answer; Redis down
is reported and tolerated; the answer over HTTP on the metrics port is 200 or 503 with each state."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request

from common.db import create_engine
from common.metrics import serve_metrics
from common.readiness import Readiness
from tests.support.processes import free_port

NOWHERE = "127.0.0.1:9"  # discard port: nothing listens


async def _report(settings, **changes):
    changed = settings.replace(**changes)
    engine = create_engine(changed, "cart", pool_size=1)
    try:
        return await Readiness("cart", engine, changed, uses_redis=True).report()
    finally:
        await engine.dispose()


async def test_ready_when_every_dependency_answers(settings) -> None:
    report = await _report(settings)
    assert report.ready and report.dependencies == {"database": "up", "nats": "up", "redis": "up"}


async def test_not_ready_without_nats_or_the_database(settings) -> None:
    without_nats = await _report(settings, nats_url=f"nats://{NOWHERE}")
    assert not without_nats.ready and without_nats.dependencies["nats"].startswith("down")
    assert without_nats.dependencies["database"] == "up"
    without_db = await _report(settings, cart_database_url=f"postgresql+psycopg://checkout_cart@{NOWHERE}/x")
    assert not without_db.ready and without_db.dependencies["database"].startswith("down")
    assert "Error" not in json.dumps(without_db.to_json())  # no exception class names in the answer


async def test_redis_down_is_said_and_tolerated(settings) -> None:
    report = await _report(settings, redis_url=f"redis://{NOWHERE}/0")
    assert report.ready and report.dependencies["redis"] == "down (unreachable) (serving without the cache)"


def _get(url: str) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()


async def test_the_metrics_port_serves_readyz_healthz_and_metrics(settings) -> None:
    for changes, expected in (({}, 200), ({"nats_url": f"nats://{NOWHERE}"}, 503)):
        changed = settings.replace(**changes)
        engine = create_engine(changed, "order", pool_size=1)
        port = free_port()
        serve_metrics(port, readiness=Readiness("order", engine, changed))
        try:
            status, body = await asyncio.to_thread(_get, f"http://127.0.0.1:{port}/readyz")
            assert status == expected and body["service"] == "order_svc" and body["ready"] is (expected == 200)
            assert await asyncio.to_thread(_get, f"http://127.0.0.1:{port}/healthz") == (200, {"status": "live"})
            metrics = await asyncio.to_thread(_text, f"http://127.0.0.1:{port}/metrics")
            assert "checkout_rpc_handled_total" in metrics or "python_info" in metrics
        finally:
            await engine.dispose()
