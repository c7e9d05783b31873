"""Drops this process's catalog cache when the catalog changes anywhere: a core NATS subscription
to `checkout.catalog.changed` (the admin API's outbox publishes it through JetStream; a plain
subscriber hears every message of the subject, and each replica must, so no durable consumer).

An event missed while NATS was away is covered by dropping the cache at every (re)connect; the
cache's TTL bounds what remains (a change made while this process could not hear)."""

from __future__ import annotations

import asyncio
import logging

from nats.aio.msg import Msg

from cart_svc.catalog_cache import CatalogCache
from cart_svc.events import CATALOG_CHANGED
from common.events import EventSettings
from common.nats_streams import close_quietly, connect
from common.retry import RetryPolicy
from common.settings import Settings
from common.workers import Worker, sleep_or_stop, unless_stopped

_log = logging.getLogger(__name__)


class CatalogListener:
    def __init__(self, cache: CatalogCache, nats_url: str, events: EventSettings) -> None:
        self._cache = cache
        self._nats_url = nats_url
        self._subject = events.wire_subject(CATALOG_CHANGED)
        self.listening = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        retry = RetryPolicy(attempts=1, first_delay=0.2, max_delay=5.0)
        failures = 0
        while not stop.is_set():
            nc = None
            try:
                nc = await unless_stopped(stop, connect(self._nats_url, "cart-catalog-listener",
                                                        on_reconnect=self._cache.clear))
                if nc is None:
                    return
                await nc.subscribe(self._subject, cb=self._changed)
                await nc.flush()
                self._cache.clear()  # what changed before we listened
                self.listening.set()
                failures = 0
                await stop.wait()
            except Exception as error:
                failures += 1
                _log.warning("catalog listener cannot subscribe; the cache lives by its TTL meanwhile",
                             extra={"error": repr(error)})
                await sleep_or_stop(stop, retry.delay(failures))
            finally:
                self.listening.clear()
                await close_quietly(nc)

    async def _changed(self, message: Msg) -> None:
        self._cache.clear()


def catalog_listener(cache: CatalogCache, settings: Settings) -> Worker:
    listener = CatalogListener(cache, settings.nats_url, EventSettings.from_settings(settings))
    return Worker("cart-catalog-listener", listener.run, serves_requests=True)
