"""Readiness of one service process: does it reach what it needs to do its work?

`/readyz` on the service's metrics port (common/metrics.py) answers 200 when ready and 503 when
not, with each dependency's state:

    {"service": "cart_svc", "ready": true,
     "dependencies": {"database": "up", "nats": "up", "redis": "down (serving without the cache)"}}

- database: `SELECT 1` on the service's own pool within the probe's budget;
- nats: a connection and a round trip to the NATS server (the relay and the consumers need it);
- redis (only a service that uses it): down does not make the service unready, since it serves from
  PostgreSQL without it, and the answer says so.
A result is reused for `CACHE_SECONDS`, so a burst of probes costs one check.
`/healthz` there stays liveness: the process answers.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.cache import create_redis
from common.nats_streams import connect_once
from common.settings import Settings

_log = logging.getLogger(__name__)
PROBE_TIMEOUT_SECONDS = 1.0
PROBE_FLUSH_SECONDS = 1  # nats-py takes whole seconds here
CACHE_SECONDS = 1.0
UP = "up"


@dataclasses.dataclass(frozen=True)
class Report:
    service: str
    ready: bool
    dependencies: dict[str, str]

    def to_json(self) -> dict[str, object]:
        return {"service": self.service, "ready": self.ready, "dependencies": self.dependencies}


class Readiness:
    def __init__(self, service: str, engine: AsyncEngine, settings: Settings, *, uses_redis: bool = False,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._service = f"{service}_svc"
        self._engine = engine
        self._settings = settings
        self._uses_redis = uses_redis
        self._clock = clock
        self._last: tuple[float, Report] | None = None
        self._down: set[str] = set()

    async def report(self) -> Report:
        now = self._clock()
        if self._last is not None and now - self._last[0] < CACHE_SECONDS:
            return self._last[1]
        checks: dict[str, Callable[[], Awaitable[None]]] = {"database": self._database, "nats": self._nats}
        if self._uses_redis:
            checks["redis"] = self._redis
        states = await asyncio.gather(*(_state(check) for check in checks.values()))
        dependencies = dict(zip(checks, states, strict=True))
        if dependencies.get("redis", UP) != UP:
            dependencies["redis"] += " (serving without the cache)"
        ready = all(state == UP for name, state in dependencies.items() if name != "redis")
        self._log_changes(dependencies)
        report = Report(self._service, ready, dependencies)
        self._last = (now, report)
        return report

    def _log_changes(self, dependencies: dict[str, str]) -> None:
        """One line when a dependency goes down and one when it is back, never one per probe."""
        for name, state in dependencies.items():
            if state != UP and name not in self._down:
                self._down.add(name)
                _log.warning("dependency down", extra={"dependency": name, "state": state})
            elif state == UP and name in self._down:
                self._down.discard(name)
                _log.warning("dependency back", extra={"dependency": name})

    async def _database(self) -> None:
        async with self._engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def _nats(self) -> None:
        connection = await connect_once(self._settings.nats_url, connect_timeout=PROBE_TIMEOUT_SECONDS,
                                        max_reconnect_attempts=0)
        try:
            await connection.flush(timeout=PROBE_FLUSH_SECONDS)
        finally:
            await connection.close()

    async def _redis(self) -> None:
        client = create_redis(self._settings, timeout=PROBE_TIMEOUT_SECONDS)
        try:
            await client.ping()
        finally:
            await client.aclose()


async def _state(check: Callable[[], Awaitable[None]]) -> str:
    """"up" or "down (…)"; the reason names no exception class (the log line has the details)."""
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_SECONDS * 2):
            await check()
    except TimeoutError:
        return "down (timed out)"
    except Exception as error:  # a probe reports, it never raises
        _log.debug("readiness probe failed", exc_info=error)
        return "down (unreachable)"
    return UP
