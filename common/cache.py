"""Redis as an optional speed-up: a client with short timeouts, and calls that never raise.

PostgreSQL is the truth. When Redis is slow or gone, every call here becomes a miss, counted in
CACHE_ERRORS; a small circuit breaker then skips Redis for a moment so a dead server does not add
its timeout to every request, and only the start and the end of a failure burst are logged.
Each call that reaches Redis is a span (`redis.<operation>`, common/tracing.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from common.metrics import CACHE_ERRORS
from common.settings import Settings
from common.tracing import CLIENT, span

_log = logging.getLogger(__name__)

T = TypeVar("T")

REDIS_TIMEOUT_SECONDS = 0.25
REDIS_MAX_CONNECTIONS = 64


def create_redis(settings: Settings, *, timeout: float = REDIS_TIMEOUT_SECONDS) -> aioredis.Redis:
    """A pooled client (connects lazily). No retries: a retry would only multiply the timeout."""
    return aioredis.Redis.from_url(
        settings.redis_url,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        max_connections=REDIS_MAX_CONNECTIONS,  # beyond this a call fails at once (a miss) rather than queueing
        retry=Retry(NoBackoff(), 0),
        health_check_interval=30,
    )


class SafeCache:
    def __init__(self, client: aioredis.Redis, *, cooldown_seconds: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self._cooldown = cooldown_seconds
        self._clock = clock
        self._skip_until = 0.0
        self._failing = False

    async def run(self, operation: str, call: Callable[[aioredis.Redis], Awaitable[T]]) -> T | None:
        """`call(client)`, or None when Redis failed or is being skipped. Raises nothing but CancelledError."""
        now = self._clock()
        if now < self._skip_until:
            CACHE_ERRORS.labels(operation).inc()
            return None
        if self._failing:
            self._skip_until = now + self._cooldown  # half-open: this call probes, concurrent ones still skip
        task = asyncio.current_task()
        cancels = task.cancelling() if task else 0
        try:
            with span(f"redis.{operation}", kind=CLIENT):
                result = await call(self.client)
        except Exception as error:  # any failure of an optional cache is a miss
            _reraise_cancel(task, cancels)
            CACHE_ERRORS.labels(operation).inc()
            self._skip_until = self._clock() + self._cooldown
            if not self._failing:
                self._failing = True
                _log.warning("redis unavailable: serving from PostgreSQL", extra={"operation": operation, "error": repr(error)})
            return None
        _reraise_cancel(task, cancels)
        if self._failing:
            self._failing = False
            self._skip_until = 0.0
            _log.info("redis available again", extra={"operation": operation})
        return result

    async def get(self, key: str) -> bytes | None:
        value = await self.run("get", lambda client: client.get(key))
        return value.encode() if isinstance(value, str) else value

    async def get_many(self, *keys: str) -> list[bytes | None]:
        """MGET: one round trip; every value None when Redis failed."""
        values = await self.run("get", lambda client: client.mget(keys))
        return [value.encode() if isinstance(value, str) else value for value in values or [None] * len(keys)]

    async def set(self, key: str, value: bytes, ttl_ms: int) -> bool:
        if ttl_ms <= 0:
            return False
        return bool(await self.run("set", lambda client: client.set(key, value, px=ttl_ms)))

    async def delete(self, *keys: str) -> bool:
        """True when the keys are gone (Redis answered)."""
        return await self.run("delete", lambda client: client.delete(*keys)) is not None

    async def close(self) -> None:
        try:
            await self.client.aclose()
        except Exception:  # closing a dead connection pool may fail; nothing is lost
            pass


def _reraise_cancel(task: asyncio.Task[object] | None, cancels_before: int) -> None:
    """redis-py can absorb a cancel that lands mid-command (returning or raising an ordinary error);
    the task must still end, or a shutdown waiting for it waits forever."""
    if task is not None and task.cancelling() > cancels_before:
        raise asyncio.CancelledError()
