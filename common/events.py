"""What the outbox relay and the event consumers agree on: stream and consumer names, header
names, how an outbox subject becomes a wire subject, and the crash-test fault hook.

Settings come from environment variables (listed in docs/EVENTS.md) with production defaults;
tests replace them with unique names, because the machine's NATS is shared between test runs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
from collections.abc import Awaitable, Callable

from common.config import env_int, env_number
from common.outbox import STREAM_SUBJECT_PREFIX

# Headers on every published event.
MSG_ID_HEADER = "Nats-Msg-Id"  # = outbox id; JetStream drops a repeat inside the duplicate window
CORRELATION_HEADER = "X-Correlation-Id"
AGGREGATE_HEADER = "Checkout-Aggregate-Id"
OUTBOX_SEQ_HEADER = "Checkout-Outbox-Seq"

CAPTURED_SUBJECT = "checkout.payment.captured"
ENROLLMENT_CREATED_SUBJECT = "checkout.enrollment.created"

FAULT_ENV = "CHECKOUT_FAULT"
TEST_HOOKS_ENV = "CHECKOUT_TEST_HOOKS"  # the switch without which CHECKOUT_FAULT does nothing

_log = logging.getLogger(__name__)


def _env_floats(name: str, default: str) -> tuple[float, ...]:
    raw = os.environ.get(name) or default
    try:
        return tuple(float(part) for part in raw.split(",") if part.strip())
    except ValueError:
        raise SystemExit(f"setting {name} must be comma-separated numbers, got {raw!r}") from None


def _env_flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    return default if not raw else raw in ("1", "true", "yes", "on")


@dataclasses.dataclass(frozen=True)
class EventSettings:
    stream: str = "CHECKOUT"
    dlq_stream: str = "CHECKOUT_DLQ"  # stores the max-deliveries advisories so none is missed
    subject_prefix: str = ""  # prepended to "checkout.…" on the wire (tests: a unique namespace)
    replicas: int = 1
    duplicate_window: float = 600.0  # seconds; must exceed the relay's worst retry delay
    max_age: float = 7 * 24 * 3600.0
    dlq_max_age: float = 30 * 24 * 3600.0
    durable: str = "enrollment"
    ack_wait: float = 30.0
    max_deliver: int = 5
    nak_delays: tuple[float, ...] = (1.0, 5.0, 15.0, 60.0)  # by delivery number: 1st failure, 2nd, …
    fetch_batch: int = 1  # nats-py fetch(n>1) can hold a first message until its timeout: docs/EVENTS.md
    relay_lock_key: int = 0x636B6F7574626F78  # "ckoutbox": the relay leader's advisory lock
    relay_poll_interval: float = 1.0
    relay_batch: int = 100
    relay_publish_timeout: float = 2.0
    relay_max_retry_delay: float = 5.0
    relay_embedded: bool = True  # enrollment_svc runs a relay too (only one leader publishes)
    relay_metrics_port: int = 9105

    @property
    def dlq_durable(self) -> str:
        return f"{self.durable}_dead_letters"

    @property
    def stream_subjects(self) -> str:
        return f"{self.subject_prefix}{STREAM_SUBJECT_PREFIX}>"

    def wire_subject(self, subject: str) -> str:
        return f"{self.subject_prefix}{subject}"

    def max_deliveries_advisory(self, durable: str | None = None) -> str:
        """The subject NATS publishes to when a message of `durable` ran out of deliveries."""
        return f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{self.stream}.{durable or '*'}"

    def nak_delay(self, delivered: int) -> float:
        if not self.nak_delays:
            return 0.0
        return self.nak_delays[min(delivered, len(self.nak_delays)) - 1]


def load_event_settings() -> EventSettings:
    base = EventSettings()
    return EventSettings(
        stream=os.environ.get("NATS_STREAM") or base.stream,
        dlq_stream=os.environ.get("NATS_DLQ_STREAM") or base.dlq_stream,
        subject_prefix=os.environ.get("NATS_SUBJECT_PREFIX", base.subject_prefix),
        replicas=env_int("NATS_REPLICAS", base.replicas),
        duplicate_window=env_number("NATS_DUPLICATE_WINDOW", base.duplicate_window),
        max_age=env_number("NATS_MAX_AGE", base.max_age),
        dlq_max_age=env_number("NATS_DLQ_MAX_AGE", base.dlq_max_age),
        durable=os.environ.get("ENROLLMENT_DURABLE") or base.durable,
        ack_wait=env_number("ENROLLMENT_ACK_WAIT", base.ack_wait),
        max_deliver=env_int("ENROLLMENT_MAX_DELIVER", base.max_deliver),
        nak_delays=_env_floats("ENROLLMENT_NAK_DELAYS", ",".join(str(d) for d in base.nak_delays)),
        fetch_batch=env_int("ENROLLMENT_FETCH_BATCH", base.fetch_batch),
        relay_lock_key=env_int("OUTBOX_RELAY_LOCK_KEY", base.relay_lock_key),
        relay_poll_interval=env_number("OUTBOX_RELAY_POLL_INTERVAL", base.relay_poll_interval),
        relay_batch=env_int("OUTBOX_RELAY_BATCH", base.relay_batch),
        relay_publish_timeout=env_number("OUTBOX_RELAY_PUBLISH_TIMEOUT", base.relay_publish_timeout),
        relay_max_retry_delay=env_number("OUTBOX_RELAY_MAX_RETRY_DELAY", base.relay_max_retry_delay),
        relay_embedded=_env_flag("OUTBOX_RELAY_EMBEDDED", base.relay_embedded),
        relay_metrics_port=env_int("OUTBOX_RELAY_METRICS_PORT", base.relay_metrics_port),
    )


def armed_faults() -> frozenset[str]:
    """The fault points named by CHECKOUT_FAULT, or none unless CHECKOUT_TEST_HOOKS is also on:
    a stray CHECKOUT_FAULT in a real environment must not kill a real process."""
    if not _env_flag(TEST_HOOKS_ENV, False):
        return frozenset()
    return frozenset(part.strip() for part in os.environ.get(FAULT_ENV, "").split(",") if part.strip())


def warn_about_fault_settings() -> None:
    """Called once at every process start, after logging is configured."""
    wanted = os.environ.get(FAULT_ENV, "").strip()
    if not wanted:
        return
    if armed_faults():
        _log.warning("test hooks on: this process kills itself at the named fault points",
                     extra={"fault": wanted})
    else:
        _log.warning(f"{FAULT_ENV} is set but {TEST_HOOKS_ENV} is not: the fault points are off and "
                     f"{FAULT_ENV} is ignored (it is for crash tests only)", extra={"fault": wanted})


def fault_point(name: str) -> None:
    """Crash tests: when the fault points are armed (armed_faults) and name this one, the process
    SIGKILLs itself here, so nothing after it (a mark, an ack) happens and no cleanup runs."""
    if name in armed_faults():
        _log.warning("fault injected: killing this process", extra={"fault": name})
        os.kill(os.getpid(), signal.SIGKILL)


async def sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    """Sleep, but wake at once when `stop` is set."""
    try:
        await asyncio.wait_for(stop.wait(), timeout=max(0.0, seconds))
    except TimeoutError:
        pass


class BackgroundTask:
    """A long-running loop `run(stop)` as an asyncio task, stopped gracefully (then cancelled)."""

    def __init__(self, name: str, run: Callable[[asyncio.Event], Awaitable[None]]) -> None:
        self.name = name
        self.stop_event = asyncio.Event()
        self.task = asyncio.create_task(run(self.stop_event), name=name)
        self.task.add_done_callback(self._report)

    def _report(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            _log.error("background task died", extra={"task": self.name}, exc_info=task.exception())
        elif not self.stop_event.is_set():
            _log.error("background task ended without being stopped", extra={"task": self.name})

    async def stop(self, timeout: float = 10.0) -> None:
        self.stop_event.set()
        try:
            await asyncio.wait_for(asyncio.shield(self.task), timeout=timeout)
        except TimeoutError:
            _log.warning("background task did not stop in time; cancelling", extra={"task": self.name})
            self.task.cancel()
            try:
                await self.task
            except (asyncio.CancelledError, Exception):
                pass
        except Exception:
            pass  # already logged by _report
