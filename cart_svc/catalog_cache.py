"""The catalog answers of this process, kept until an admin changes the catalog (the
`checkout.catalog.changed` event: cart_svc/workers/catalog_events.py) or TTL seconds pass.

Each entry is the answer's protobuf message with the ETag of its bytes, so a repeat costs neither
a database read nor a serialization for the ETag; or a value a use case reads from the catalog
(`value`: the plans CreateCart looks up, cart_svc/service.py). A load that started before an invalidation is
not stored (the generation moved on), so a change is never hidden behind an answer read before it.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from google.protobuf.message import Message

from common.etags import etag_of
from common.metrics import CACHE_LOOKUPS

M = TypeVar("M", bound=Message)
V = TypeVar("V")


@dataclasses.dataclass(frozen=True)
class Cached(Generic[M]):
    etag: str
    message: M
    stored_at: float


class CatalogCache:
    def __init__(self, ttl_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl = ttl_seconds
        self._clock = clock
        self._entries: dict[str, tuple[object, float]] = {}  # key → (value, stored at)
        self.generation = 0

    def clear(self) -> None:
        self.generation += 1
        self._entries.clear()

    async def get(self, key: str, load: Callable[[], Awaitable[M]]) -> Cached[M]:
        """An answer of the catalog API, with the ETag of its bytes."""
        async def answer() -> Cached[M]:
            message = await load()
            return Cached(etag_of(message.SerializeToString(deterministic=True)), message, self._clock())

        return await self.value(key, answer)

    async def value(self, key: str, load: Callable[[], Awaitable[V]]) -> V:
        """What `load` reads from the catalog, kept as the answers are (same TTL, dropped with them);
        immutable values only, since every caller gets the same one."""
        entry = self._entries.get(key)
        now = self._clock()
        if entry is not None and now - entry[1] < self._ttl:
            CACHE_LOOKUPS.labels("catalog", "hit").inc()
            return entry[0]  # type: ignore[return-value]
        CACHE_LOOKUPS.labels("catalog", "miss").inc()
        generation = self.generation
        fresh = await load()
        if generation == self.generation and self._ttl > 0:
            self._entries[key] = (fresh, now)
        return fresh
