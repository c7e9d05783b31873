"""Helpers for the outbox relay and enrollment consumer tests: a private JetStream namespace per
test (the machine's NATS is shared between test runs), paid orders, captured events, a relay and a
consumer running in-process, subprocess environments, and a private nats-server."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import pathlib
import random
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from decimal import Decimal
from typing import Any

import nats
from nats.js import JetStreamContext
from nats.js.api import RawStreamMsg
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from common.config import Settings
from common.events import CAPTURED_SUBJECT, MSG_ID_HEADER, BackgroundTask, EventSettings
from common.nats_streams import close_quietly, delete_streams
from common.outbox import add_event
from common.outbox_relay import OutboxRelay
from common.tables import carts, enrollments, orders
from enrollment_svc.consumer import EnrollmentConsumer
from tests.support.processes import fault_env, inherited_env

ROOT = pathlib.Path(__file__).resolve().parents[2]
NATS_SERVER = pathlib.Path(sys.executable).parent / "nats-server"

BACKEND = "5b7f6a2e-1c1d-4c3a-9f55-0d0c1a000001"
PLANS = {  # sample catalog (cart_svc.seed): months → plan id, all of the backend internship
    1: "7a1e0000-0000-4000-8000-000000000101",
    3: "7a1e0000-0000-4000-8000-000000000103",
    6: "7a1e0000-0000-4000-8000-000000000106",
}


def unique_events(**overrides: Any) -> EventSettings:
    """Stream, subjects and relay lock of this test alone; quick redelivery settings."""
    tag = uuid.uuid4().hex[:10]
    base = EventSettings(
        stream=f"T{tag}", dlq_stream=f"T{tag}_DLQ", subject_prefix=f"t{tag}.", max_age=3600, dlq_max_age=3600,
        ack_wait=2.0, max_deliver=3, nak_delays=(0.2, 0.2), relay_lock_key=random.randint(1, 2**62),
        relay_poll_interval=0.5, relay_max_retry_delay=0.5, relay_embedded=False, relay_metrics_port=0,
    )
    return dataclasses.replace(base, **overrides)


@contextlib.asynccontextmanager
async def jetstream(url: str) -> AsyncIterator[JetStreamContext]:
    nc = await nats.connect(url, connect_timeout=2, allow_reconnect=False)
    try:
        yield nc.jetstream(timeout=5)
    finally:
        await close_quietly(nc)


async def drop_streams(url: str, events: EventSettings) -> None:
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


# -- orders and events --------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class OrderRef:
    order_token: str
    user_id: str
    plan_id: str
    months: int


async def make_order(engine: AsyncEngine, *, months: int = 1, status: str = "paid", user_id: str | None = None,
                     period_unit: str = "month") -> OrderRef:
    user_id = user_id or str(uuid.uuid4())
    cart_token, order_token = str(uuid.uuid4()), str(uuid.uuid4())
    now = datetime.datetime.now(datetime.UTC)
    plan_id = PLANS.get(months, PLANS[1])
    async with engine.begin() as conn:
        await conn.execute(insert(carts).values(
            token=cart_token, user_id=user_id, status="converted", items=[], currency="INR",
            expires_at=now + datetime.timedelta(days=1),
        ))
        await conn.execute(insert(orders).values(
            order_token=order_token, cart_token=cart_token, user_id=user_id, status=status, currency="INR",
            items=[{"internship_id": BACKEND, "plan_id": plan_id, "quantity": 1, "title": "Backend",
                    "period_value": months, "period_unit": period_unit, "unit_price": "1499.00"}],
            subtotal=Decimal("1499.00"), total=Decimal("1499.00"), exchange_rate=Decimal(1),
            expires_at=now + datetime.timedelta(minutes=30),
        ))
    return OrderRef(order_token, user_id, plan_id, months)


def captured_payload(order: OrderRef) -> dict[str, str]:
    return {"order_token": order.order_token, "payment_token": str(uuid.uuid4()), "user_id": order.user_id,
            "amount": "1499.00", "currency": "INR", "gateway": "razorpay", "gateway_payment_id": "pay_test"}


async def add_captured(engine: AsyncEngine, order: OrderRef) -> str:
    """The outbox row payment_svc writes when the order becomes paid; returns its id."""
    async with engine.begin() as conn:
        return await add_event(conn, subject=CAPTURED_SUBJECT, aggregate_id=order.order_token,
                               payload=captured_payload(order))


async def enrollments_of(engine: AsyncEngine, order_token: str) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(select(enrollments).where(enrollments.c.order_token == order_token))).all())


async def order_row(engine: AsyncEngine, order_token: str) -> Any:
    async with engine.connect() as conn:
        return (await conn.execute(select(orders).where(orders.c.order_token == order_token))).one()


async def count(engine: AsyncEngine, table: Any, *where: Any) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(select(func.count()).select_from(table).where(*where))).scalar_one()


# -- workers in this process ---------------------------------------------------------------------------
@contextlib.asynccontextmanager
async def running_relay(settings: Settings, events: EventSettings, *, nats_url: str | None = None,
                        name: str = "test-relay") -> AsyncIterator[OutboxRelay]:
    relay = OutboxRelay(settings.database_url, nats_url or settings.nats_url, events, name=name)
    task = BackgroundTask(name, relay.run)
    try:
        yield relay
    finally:
        await task.stop(timeout=5)


@contextlib.asynccontextmanager
async def running_consumer(engine: AsyncEngine, settings: Settings, events: EventSettings, *,
                           nats_url: str | None = None, wait_ready: bool = True,
                           **options: Any) -> AsyncIterator[EnrollmentConsumer]:
    consumer = EnrollmentConsumer(engine, nats_url or settings.nats_url, events, **options)
    task = BackgroundTask("test-consumer", consumer.run)
    try:
        if wait_ready:
            await asyncio.wait_for(consumer.ready.wait(), timeout=10)
        yield consumer
    finally:
        await task.stop(timeout=5)


# -- subprocesses ----------------------------------------------------------------------------------
def process_env(settings: Settings, events: EventSettings, *, nats_url: str | None = None,
                fault: str | None = None) -> dict[str, str]:
    env = inherited_env()
    env.update({
        "DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url,
        "NATS_URL": nats_url or settings.nats_url,
        "NATS_STREAM": events.stream, "NATS_DLQ_STREAM": events.dlq_stream,
        "NATS_SUBJECT_PREFIX": events.subject_prefix, "NATS_MAX_AGE": str(events.max_age),
        "NATS_DLQ_MAX_AGE": str(events.dlq_max_age),
        "ENROLLMENT_DURABLE": events.durable, "ENROLLMENT_ACK_WAIT": str(events.ack_wait),
        "ENROLLMENT_MAX_DELIVER": str(events.max_deliver),
        "ENROLLMENT_NAK_DELAYS": ",".join(str(d) for d in events.nak_delays),
        "OUTBOX_RELAY_LOCK_KEY": str(events.relay_lock_key),
        "OUTBOX_RELAY_POLL_INTERVAL": str(events.relay_poll_interval),
        "OUTBOX_RELAY_MAX_RETRY_DELAY": str(events.relay_max_retry_delay),
        "OUTBOX_RELAY_EMBEDDED": "1" if events.relay_embedded else "0", "OUTBOX_RELAY_METRICS_PORT": "0",
        "ENROLLMENT_GRPC_PORT": "0", "ENROLLMENT_METRICS_PORT": "0", "LOG_LEVEL": "INFO",
    })
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrivateNats:
    """A nats-server of this test alone (JetStream, file store, sync_interval: always)."""

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
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.02)
        raise AssertionError("private nats-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)
            self.process = None
