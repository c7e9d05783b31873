"""Helpers for tests of the event plumbing (common/outbox_relay.py, common/consumer.py) on real
PostgreSQL and NATS: a JetStream namespace per test (the machine's NATS is shared between test
runs), a scratch schema with the plumbing tables, stream inspection, waiting on a condition,
subprocesses, and a nats-server of a test's own (PrivateNats, kept in event_bus.py)."""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import nats
from nats.js import JetStreamContext
from nats.js.api import RawStreamMsg
from sqlalchemy import MetaData, text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.events import MSG_ID_HEADER, EventSettings
from common.nats_streams import close_quietly, delete_streams, ensure_streams
from common.plumbing import Plumbing, plumbing_tables
from common.settings import ROLES, Settings
from common.workers import Run, Worker
from migrations.plumbing import plumbing_v1
from tests.support.event_bus import PrivateNats as PrivateNats  # the tests here import it from this module too
from tests.support.processes import fault_env, inherited_env

ROOT = pathlib.Path(__file__).resolve().parents[2]

# Quick redelivery, short retention: what a test namespace runs with unless it says otherwise.
QUICK = {"consumer_ack_wait": 2.0, "consumer_max_deliver": 3, "consumer_nak_delays": ("0.2", "0.2"),
         "outbox_relay_poll_interval": 0.5, "outbox_relay_max_retry_delay": 0.5, "nats_max_age": 3600.0,
         "nats_dlq_max_age": 3600.0}


def namespaced(settings: Settings, **overrides: Any) -> Settings:
    """`settings` with streams and a subject prefix of this test alone (and QUICK timings)."""
    tag = uuid.uuid4().hex[:10]
    return settings.replace(**{"nats_stream": f"T{tag}", "nats_dlq_stream": f"T{tag}_DLQ",
                               "nats_subject_prefix": f"t{tag}.", **QUICK, **overrides})


def events_of(settings: Settings) -> EventSettings:
    return EventSettings.from_settings(settings)


@contextlib.asynccontextmanager
async def jetstream(url: str) -> AsyncIterator[JetStreamContext]:
    nc = await nats.connect(url, connect_timeout=2, allow_reconnect=False)
    try:
        yield nc.jetstream(timeout=5)
    finally:
        await close_quietly(nc)


async def declare_streams(url: str, events: EventSettings) -> None:
    async with jetstream(url) as js:
        await ensure_streams(js, events)


async def drop_streams(url: str, events: EventSettings) -> None:
    """Delete a namespace's streams (and with them its consumers); quiet if NATS is gone."""
    with contextlib.suppress(Exception):
        async with jetstream(url) as js:
            await delete_streams(js, events)


async def stream_messages(js: JetStreamContext, events: EventSettings) -> list[RawStreamMsg]:
    info = await js.stream_info(events.stream)
    found = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        with contextlib.suppress(nats.js.errors.NotFoundError):
            found.append(await js.get_msg(events.stream, seq))
    return found


async def msg_ids(js: JetStreamContext, events: EventSettings) -> list[str]:
    return [(m.headers or {}).get(MSG_ID_HEADER, "") for m in await stream_messages(js, events)]


async def wait_for(check: Callable[[], Awaitable[bool]], timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if await check():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)


def holds(condition: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    """An in-process condition as a `wait_for` check."""

    async def check() -> bool:
        return condition()

    return check


@contextlib.asynccontextmanager
async def running(name: str, run: Run, *, stop_timeout: float = 5.0) -> AsyncIterator[Worker]:
    """A worker of this process (a relay's or consumer's `run`), stopped at the end."""
    worker = Worker(name, run).start()
    try:
        yield worker
    finally:
        await worker.stop(timeout=stop_timeout)


# -- a schema of the test's own ------------------------------------------------------------------
@contextlib.asynccontextmanager
async def scratch_plumbing(admin_engine: AsyncEngine, service: str = "enrollment") -> AsyncIterator[Plumbing]:
    """A new schema owned by `service`'s role, with the plumbing tables as its migrations make them
    (migrations/plumbing.py): the relay and consumers connect as that role, as in production, but
    no other test's outbox rows, relay lock or NOTIFY channel can meet this test's."""
    schema = f"scratch_{uuid.uuid4().hex[:10]}"
    role = ROLES[service]
    async with admin_engine.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA "{schema}" AUTHORIZATION {role}'))
        await conn.execute(text(f"SET LOCAL ROLE {role}"))
        await conn.execute(text(f'SET LOCAL search_path TO "{schema}"'))
        raw = await conn.get_raw_connection()
        await raw.driver_connection.execute(plumbing_v1(schema))  # no parameters: `%` stays as it is
    try:
        yield plumbing_tables(MetaData(), schema)
    finally:
        async with admin_engine.begin() as conn:
            await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


# -- subprocesses -----------------------------------------------------------------------------------
def process_env(settings: Settings, *, fault: str | None = None, **extra: str) -> dict[str, str]:
    """The environment of a child process that reads `settings` (its database, NATS namespace…)."""
    env = inherited_env()
    for name in ("database_url", "cart_database_url", "order_database_url", "payment_database_url",
                 "enrollment_database_url", "redis_url", "nats_url", "nats_stream", "nats_dlq_stream",
                 "nats_subject_prefix", "nats_max_age", "nats_dlq_max_age", "consumer_ack_wait",
                 "consumer_max_deliver", "outbox_relay_poll_interval", "outbox_relay_max_retry_delay"):
        env[name.upper()] = str(getattr(settings, name))
    env["CONSUMER_NAK_DELAYS"] = ",".join(settings.consumer_nak_delays)
    env["LOG_LEVEL"] = "INFO"
    if fault:
        env.update(fault_env(fault))
    env.update(extra)
    return env


@contextlib.contextmanager
def python_process(argv: list[str], env: dict[str, str], log: pathlib.Path) -> Iterator[subprocess.Popen[bytes]]:
    """`python <argv>`; SIGTERM (then SIGKILL) at the end if it is still running."""
    with open(log, "ab") as out:
        process = subprocess.Popen([sys.executable, *argv], cwd=ROOT, env=env, stdout=out, stderr=out)
    try:
        yield process
    finally:
        stop_process(process)


def stop_process(process: subprocess.Popen[bytes], timeout: float = 10) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


async def wait_exit(process: subprocess.Popen[bytes], timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while process.poll() is None:
        if time.monotonic() > deadline:
            raise AssertionError(f"process {process.args} still running after {timeout}s")
        await asyncio.sleep(0.05)
    return process.returncode
