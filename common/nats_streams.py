"""Connecting to NATS and declaring the JetStream streams and consumers (idempotent: every relay
and consumer runs this at start and after each reconnect, so a fresh server gets them back).

CHECKOUT holds every `checkout.>` event; CHECKOUT_DLQ holds the max-deliveries advisories of its
consumers, so an advisory published while no consumer process runs is still there later.
Why each setting: docs/EVENTS.md.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError

from common.events import EventSettings

_log = logging.getLogger(__name__)

STREAM_CONFIG_CHANGED = 10058  # "stream name already in use with a different configuration"
MAX_MESSAGE_BYTES = 1024 * 1024


def servers(url: str) -> list[str]:
    """NATS_URL may list a cluster's servers, comma-separated: the first connect tries each."""
    return [part.strip() for part in url.split(",") if part.strip()]


async def connect_once(url: str, **options: Any) -> Client:
    """A connection without reconnects (probes, setup) to the first of the servers that answers."""
    error: BaseException | None = None
    for server in servers(url):
        try:
            return await nats.connect(server, allow_reconnect=False, **options)
        except Exception as failed:  # the next server, if any
            error = failed
    raise error or ValueError(f"no NATS server in {url!r}")


async def connect(url: str, name: str, *, on_reconnect: Callable[[], None] | None = None,
                  first_connect_timeout: float = 5.0) -> Client:
    """A client that, once connected, reconnects by itself forever. The first connect gives up
    after `first_connect_timeout` (nats-py would otherwise retry it forever, deaf to shutdown);
    callers back off and call again."""

    async def error_cb(error: Exception) -> None:
        _log.warning("nats connection trouble", extra={"client": name, "error": repr(error)})

    async def disconnected_cb() -> None:
        _log.warning("nats disconnected", extra={"client": name})

    async def reconnected_cb() -> None:
        _log.info("nats reconnected", extra={"client": name})
        if on_reconnect is not None:
            on_reconnect()

    nc = Client()
    try:
        await asyncio.wait_for(nc.connect(
            servers(url),
            name=name,
            connect_timeout=2,
            reconnect_time_wait=0.5,  # type: ignore[arg-type]  # a float works; nats-py's hint says int
            max_reconnect_attempts=-1,
            allow_reconnect=True,
            drain_timeout=2,
            error_cb=error_cb,
            disconnected_cb=disconnected_cb,
            reconnected_cb=reconnected_cb,
        ), timeout=first_connect_timeout)
    except BaseException:
        await close_quietly(nc)
        raise
    return nc


async def close_quietly(nc: Client | None, timeout: float = 2.0) -> None:
    """Close (never drain: a drain after a timed-out fetch can hang for the whole drain timeout)."""
    if nc is None or nc.is_closed:
        return
    try:
        await asyncio.wait_for(nc.close(), timeout=timeout)
    except Exception as error:  # closing is best effort: the process may be going away
        _log.debug("nats close failed", extra={"error": repr(error)})


def stream_config(events: EventSettings) -> StreamConfig:
    return StreamConfig(
        name=events.stream,
        description="checkout events, published from the transactional outbox",
        subjects=[events.stream_subjects],
        retention=RetentionPolicy.LIMITS,
        discard=DiscardPolicy.OLD,
        storage=StorageType.FILE,
        num_replicas=events.replicas,
        duplicate_window=events.duplicate_window,
        max_age=events.max_age,
        max_msg_size=MAX_MESSAGE_BYTES,
    )


def dlq_stream_config(events: EventSettings) -> StreamConfig:
    return StreamConfig(
        name=events.dlq_stream,
        description=f"max-deliveries advisories of {events.stream}'s consumers",
        subjects=[events.max_deliveries_advisory()],
        retention=RetentionPolicy.LIMITS,
        discard=DiscardPolicy.OLD,
        storage=StorageType.FILE,
        num_replicas=events.replicas,
        max_age=events.dlq_max_age,
    )


async def _declare_stream(js: JetStreamContext, config: StreamConfig) -> None:
    try:
        await js.add_stream(config)
    except BadRequestError as error:
        if error.err_code != STREAM_CONFIG_CHANGED:
            raise
        _log.info("stream settings changed; updating", extra={"stream": config.name})
        await js.update_stream(config)


async def ensure_streams(js: JetStreamContext, events: EventSettings) -> None:
    await _declare_stream(js, stream_config(events))
    await _declare_stream(js, dlq_stream_config(events))


async def delete_streams(js: JetStreamContext, events: EventSettings) -> None:
    """Tests: remove this namespace's streams (and with them their consumers)."""
    for name in (events.stream, events.dlq_stream):
        try:
            await js.delete_stream(name)
        except Exception as error:
            _log.debug("delete stream failed", extra={"stream": name, "error": repr(error)})


async def with_jetstream(url: str, name: str, work: Callable[[JetStreamContext], Awaitable[None]]) -> None:
    """Run `work` on a short-lived connection (setup scripts, tests)."""
    nc = await connect_once(url, name=name, connect_timeout=2)
    try:
        await work(nc.jetstream())
    finally:
        await close_quietly(nc)
