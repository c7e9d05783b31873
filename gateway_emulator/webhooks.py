"""Sending webhooks as the gateways do: signed, retried with backoff on a non-2xx or a
connection error (bounded), one id per event across retries and duplicates; and the fault
knobs that drop, duplicate, reorder and hold them. Every attempt is logged for assertions."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import httpx

from .faults import FaultBook

_log = logging.getLogger("gateway_emulator.webhooks")

Signer = Callable[["WebhookEvent"], Mapping[str, str]]


@dataclasses.dataclass
class Attempt:
    event_id: str
    gateway: str
    event: str
    copy: int
    attempt: int
    url: str
    status: int | None
    error: str | None
    at: float
    duration_ms: float

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclasses.dataclass
class WebhookEvent:
    id: str
    gateway: str
    type: str
    body: bytes
    order_id: str
    payment_id: str | None
    created_at: float = dataclasses.field(default_factory=time.time)
    # pending | held | retrying | delivered | failed (retries exhausted) | dropped | no_target
    state: str = "pending"
    url: str | None = None
    attempts: list[Attempt] = dataclasses.field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "gateway": self.gateway,
            "event": self.type,
            "order_id": self.order_id,
            "payment_id": self.payment_id,
            "state": self.state,
            "url": self.url,
            "created_at": self.created_at,
            "attempts": [dataclasses.asdict(a) for a in self.attempts],
        }


class WebhookDispatcher:
    def __init__(
        self,
        *,
        targets: Mapping[str, str | None],
        signers: Mapping[str, Signer],
        faults: FaultBook,
        retry_delays: Sequence[float],
        timeout_s: float,
    ) -> None:
        self.targets: dict[str, str | None] = dict(targets)
        self.retry_delays: tuple[float, ...] = tuple(retry_delays)
        self.timeout_s = timeout_s
        self._signers = signers
        self._faults = faults
        self._random = random.Random()
        self._events: dict[str, WebhookEvent] = {}
        self._attempts: list[Attempt] = []
        self._held: list[tuple[WebhookEvent, int]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._client = httpx.AsyncClient(
            timeout=timeout_s,
            follow_redirects=False,
            trust_env=False,
            limits=httpx.Limits(max_keepalive_connections=0),
        )

    # ---- what tests and the control API read -------------------------------------------
    def log(self, gateway: str | None = None, order_id: str | None = None) -> dict[str, Any]:
        events = [
            e
            for e in self._events.values()
            if (gateway is None or e.gateway == gateway)
            and (order_id is None or e.order_id == order_id)
        ]
        ids = {e.id for e in events}
        return {
            "events": [e.summary() for e in events],
            "attempts": [dataclasses.asdict(a) for a in self._attempts if a.event_id in ids],
            "held": [
                {"id": e.id, "event": e.type, "copy": c} for e, c in self._held if e.id in ids
            ],
        }

    def set_timeout(self, seconds: float) -> None:
        if seconds <= 0:
            raise ValueError("timeout_s must be positive")
        self.timeout_s = seconds

    # ---- sending -------------------------------------------------------------------------
    def emit(self, gateway: str, events: list[WebhookEvent]) -> None:
        """Queue what one pay/fail produced, after the gateway's webhook faults."""
        faults = self._faults.get(gateway)
        outgoing: list[tuple[WebhookEvent, int]] = []
        for event in events:
            self._events[event.id] = event
            event.url = self.targets.get(gateway)
            dropped = event.type in faults.webhook_drop_events or (
                faults.webhook_drop > 0 and self._random.random() < faults.webhook_drop
            )
            if dropped:
                event.state = "dropped"
            elif event.url is None:
                event.state = "no_target"
            else:
                outgoing.extend((event, copy) for copy in range(1, faults.webhook_duplicate + 1))
        if faults.webhook_reorder:
            outgoing.reverse()
        if faults.webhook_hold:
            for event, _ in outgoing:
                event.state = "held"
            self._held.extend(outgoing)
            return
        self._spawn(self._send_in_order(outgoing, faults.webhook_delay_ms / 1000))

    def flush(self, shuffle: bool | None = None) -> int:
        """Send what `webhook_hold` kept; shuffled when asked or when a gateway reorders."""
        held, self._held = self._held, []
        if shuffle or (
            shuffle is None and any(self._faults.get(e.gateway).webhook_reorder for e, _ in held)
        ):
            self._random.shuffle(held)
        for event, _ in held:
            event.state = "pending"
        self._spawn(self._send_in_order(held, 0.0))
        return len(held)

    def redeliver(self, event_id: str) -> WebhookEvent | None:
        """Send an event again (as the dashboard's "resend"), whatever its state."""
        event = self._events.get(event_id)
        if event is None:
            return None
        event.url = self.targets.get(event.gateway)
        if event.url is None:
            event.state = "no_target"
            return event
        event.state = "pending"
        self._spawn(self._send_in_order([(event, 1)], 0.0))
        return event

    async def close(self) -> None:
        await self.cancel_all()
        await self._client.aclose()

    async def cancel_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def reset(self) -> None:
        await self.cancel_all()
        self._events.clear()
        self._attempts.clear()
        self._held.clear()

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send_in_order(self, outgoing: list[tuple[WebhookEvent, int]], delay: float) -> None:
        """First attempts go out one after another in `outgoing` order; retries run on their own
        schedule afterwards, so a failing event never holds the next one back."""
        if delay:
            await asyncio.sleep(delay)
        for event, copy in outgoing:
            if not await self._attempt(event, copy, 1):
                self._spawn(self._retry(event, copy))

    async def _retry(self, event: WebhookEvent, copy: int) -> None:
        for number, wait in enumerate(self.retry_delays, start=2):
            await asyncio.sleep(wait)
            if await self._attempt(event, copy, number):
                return
        if event.state != "delivered":
            event.state = "failed"

    async def _attempt(self, event: WebhookEvent, copy: int, number: int) -> bool:
        url = event.url
        assert url is not None
        headers = dict(self._signers[event.gateway](event))
        started = time.monotonic()
        status: int | None = None
        error: str | None = None
        try:
            response = await self._client.post(
                url, content=event.body, headers=headers, timeout=self.timeout_s
            )
            status = response.status_code
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        attempt = Attempt(
            event_id=event.id,
            gateway=event.gateway,
            event=event.type,
            copy=copy,
            attempt=number,
            url=url,
            status=status,
            error=error,
            at=time.time(),
            duration_ms=round((time.monotonic() - started) * 1000, 1),
        )
        event.attempts.append(attempt)
        self._attempts.append(attempt)
        if attempt.ok:
            event.state = "delivered"
        elif event.state != "delivered":
            event.state = "retrying"
        _log.info(
            "webhook attempt",
            extra={"fields": {k: v for k, v in dataclasses.asdict(attempt).items() if k != "at"}},
        )
        return attempt.ok
