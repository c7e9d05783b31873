"""Helpers for tests of events: a private JetStream namespace per test (the machine's NATS is shared
between test runs), looking into streams, workers run in the test's process, service processes
started with the test's settings, and a private nats-server."""

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

from common.events import MSG_ID_HEADER, EventSettings
from common.nats_streams import close_quietly, delete_streams
from common.settings import Settings
from common.workers import Worker
from devstack.ports import port_in_use
from tests.support.processes import fault_env, free_port, inherited_env

ROOT = pathlib.Path(__file__).resolve().parents[2]
NATS_SERVER = pathlib.Path(sys.executable).parent / "nats-server"


def namespaced(settings: Settings, **overrides: Any) -> Settings:
    """`settings` with a stream, DLQ stream and subject prefix of this test alone, quick redelivery,
    and gRPC port 0 for every service (a service process of a test never takes `make run`'s ports)."""
    tag = uuid.uuid4().hex[:10]
    base: dict[str, Any] = dict(
        nats_stream=f"T{tag}", nats_dlq_stream=f"T{tag}_DLQ", nats_subject_prefix=f"t{tag}.", nats_max_age=3600,
        nats_dlq_max_age=3600, consumer_ack_wait=2.0, consumer_max_deliver=3, consumer_nak_delays=("0.2", "0.2"),
        outbox_relay_poll_interval=0.5, outbox_relay_max_retry_delay=0.5,
        cart_grpc_port=0, order_grpc_port=0, payment_grpc_port=0, enrollment_grpc_port=0,
    )
    return settings.replace(**(base | overrides))


def events_of(settings: Settings) -> EventSettings:
    return EventSettings.from_settings(settings)


@contextlib.asynccontextmanager
async def jetstream(url: str) -> AsyncIterator[JetStreamContext]:
    nc = await nats.connect(url, connect_timeout=2, allow_reconnect=False)
    try:
        yield nc.jetstream(timeout=5)
    finally:
        await close_quietly(nc)


async def drop_streams(settings: Settings) -> None:
    """The namespace's streams (and with them their consumers)."""
    async def drop() -> None:
        async with jetstream(settings.nats_url) as js:
            await delete_streams(js, events_of(settings))

    with contextlib.suppress(Exception):  # a server already gone keeps the client retrying: bounded
        await asyncio.wait_for(drop(), timeout=5)


async def stream_messages(js: JetStreamContext, events: EventSettings) -> list[RawStreamMsg]:
    info = await js.stream_info(events.stream)
    if info.state.messages == 0:
        return []  # first_seq may be 0, which get_msg refuses
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


@contextlib.asynccontextmanager
async def running(*workers: Worker) -> AsyncIterator[None]:
    """Workers (relays, consumers) running in this process for the block."""
    for worker in workers:
        worker.start()
    try:
        yield
    finally:
        for worker in workers:
            await worker.stop(timeout=5)


# -- subprocesses ----------------------------------------------------------------------------------
def settings_env(settings: Settings, *, fault: str | None = None) -> dict[str, str]:
    """The environment of a child process that loads exactly `settings` (and, with `fault`, is armed
    to kill itself there)."""
    names = {name.upper() for name in Settings.model_fields}
    env = {key: value for key, value in inherited_env().items() if key.upper() not in names}
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if isinstance(value, bool):
            text = "1" if value else "0"
        elif isinstance(value, tuple):
            text = ",".join(value)
        else:
            text = str(value)
        if text:
            env[name.upper()] = text
    if fault:
        env.update(fault_env(fault))
    return env


@contextlib.contextmanager
def python_process(module: str, env: dict[str, str], log: pathlib.Path) -> Iterator[subprocess.Popen[bytes]]:
    """`python -m module`; SIGTERM (then SIGKILL) at the end if it is still running."""
    with open(log, "ab") as out:
        process = subprocess.Popen([sys.executable, "-m", module], cwd=ROOT, env=env, stdout=out, stderr=out)
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


class PrivateNats:
    """A nats-server of this test alone (JetStream, file store, sync_interval: always), to stop and
    start again on the same port and store."""

    def __init__(self, store: pathlib.Path) -> None:
        self.port = free_port()
        self.url = f"nats://127.0.0.1:{self.port}"
        self._store = store
        self._conf = store / "nats.conf"
        store.mkdir(parents=True, exist_ok=True)
        self._conf.write_text(f'jetstream {{ store_dir: "{store / "js"}", sync_interval: always }}\n')
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self._store / "nats.log", "ab") as out:
            self.process = subprocess.Popen(
                [str(NATS_SERVER), "-a", "127.0.0.1", "-p", str(self.port), "-c", str(self._conf)],
                stdout=out, stderr=out)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if port_in_use(self.port):
                return
            time.sleep(0.02)
        raise AssertionError("private nats-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
            self.process = None
