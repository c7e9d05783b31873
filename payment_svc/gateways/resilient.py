"""A gateway adapter wrapped in a time budget, bounded retries and a circuit breaker.

Per operation: at most `attempts` tries, each cut off when the budget (GatewayTuning.budget_s,
or the caller's earlier deadline) runs out (asyncio.timeout around the awaited call: the request
is really cancelled, its connection closed, nothing runs on in a thread); full-jitter exponential backoff between tries
(common.retry.RetryPolicy). Only GatewayUnavailable and our own time-outs are retried and counted
by the breaker; GatewayRejected (4xx) is raised at once and counts as the gateway being up. While
the breaker is open, calls fail at once with BreakerOpen, so the caller moves to the fallback.

Every operation offered here must be safe to repeat: create_order and create_refund are
idempotent by our key, the others only read. Each operation is a span (common/tracing.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from common.retry import RetryPolicy
from common.tracing import CLIENT, span
from payment_svc.domain.circuit_breaker import BreakerState, CircuitBreaker
from payment_svc.domain.deadline import Deadline
from payment_svc.domain.gateway_order import GatewayName
from payment_svc.gateways.base import (
    BreakerOpen,
    CheckoutRequest,
    GatewayOrder,
    GatewayPayment,
    GatewayRefund,
    GatewayRejected,
    GatewayUnavailable,
    PaymentGateway,
)
from payment_svc.gateways.metrics import BREAKER_OPEN, GATEWAY_CALLS, GATEWAY_SECONDS
from payment_svc.tuning import GatewayTuning

T = TypeVar("T")
MIN_ATTEMPT_S = 0.05  # less time than this left: do not start another try


class ResilientGateway:
    def __init__(self, inner: PaymentGateway, breaker: CircuitBreaker, tuning: GatewayTuning,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self._inner = inner
        self._breaker = breaker
        self._tuning = tuning
        self._policy = RetryPolicy(attempts=tuning.attempts, first_delay=tuning.first_backoff_s,
                                   max_delay=tuning.max_backoff_s)
        self._sleep = sleep

    @property
    def name(self) -> GatewayName:
        return self._inner.name

    @property
    def breaker(self) -> CircuitBreaker:
        return self._breaker

    @property
    def inner(self) -> PaymentGateway:
        return self._inner

    async def create_order(self, request: CheckoutRequest, *, deadline: Deadline | None = None,
                           may_exist: bool = True) -> GatewayOrder:
        first = [True]

        def call() -> Awaitable[GatewayOrder]:
            # only the first try may skip the look-up: a failed try may have created the order
            fresh, first[0] = first[0] and not may_exist, False
            return self._inner.create_order(request, may_exist=not fresh)

        return await self._run("create_order", call, deadline)

    async def fetch_payment(self, gateway_payment_id: str, *, deadline: Deadline | None = None) -> GatewayPayment:
        return await self._run("fetch_payment", lambda: self._inner.fetch_payment(gateway_payment_id), deadline)

    async def find_order_by_key(self, key: str, *, deadline: Deadline | None = None) -> GatewayOrder | None:
        return await self._run("find_order_by_key", lambda: self._inner.find_order_by_key(key), deadline)

    async def fetch_order_payments(self, gateway_order_id: str, *,
                                   deadline: Deadline | None = None) -> list[GatewayPayment]:
        return await self._run("fetch_order_payments", lambda: self._inner.fetch_order_payments(gateway_order_id),
                               deadline)

    async def create_refund(self, payment_id: str, amount_minor: int, key: str, notes: dict[str, str], *,
                            deadline: Deadline | None = None) -> GatewayRefund:
        return await self._run("create_refund",
                               lambda: self._inner.create_refund(payment_id, amount_minor, key, notes), deadline)

    async def fetch_refund(self, refund_id: str, *, deadline: Deadline | None = None) -> GatewayRefund:
        return await self._run("fetch_refund", lambda: self._inner.fetch_refund(refund_id), deadline)

    async def _run(self, operation: str, call: Callable[[], Awaitable[T]], deadline: Deadline | None) -> T:
        """One operation, its retries included, is one CLIENT span (`gateway.razorpay.create_order`)."""
        with span(f"gateway.{self.name}.{operation}", kind=CLIENT):
            return await self._run_traced(operation, call, deadline)

    async def _run_traced(self, operation: str, call: Callable[[], Awaitable[T]], deadline: Deadline | None) -> T:
        budget = Deadline.after(self._tuning.budget_s) if deadline is None else deadline.capped(self._tuning.budget_s)
        last: GatewayUnavailable | None = None
        for attempt in range(1, self._policy.attempts + 1):
            remaining = budget.remaining()
            if remaining < MIN_ATTEMPT_S:
                break
            if not self._breaker.allow():
                self._count(operation, "breaker_open")
                raise BreakerOpen(self.name, f"circuit open; next trial in {self._breaker.seconds_until_trial():.1f}s")
            started = time.perf_counter()
            try:
                async with asyncio.timeout(remaining):
                    result = await call()
            except GatewayRejected:
                self._settle(operation, started, "rejected", self._breaker.record_success)
                raise
            except GatewayUnavailable as error:
                self._settle(operation, started, "unavailable", self._breaker.record_failure)
                last = error
            except TimeoutError:
                self._settle(operation, started, "timeout", self._breaker.record_failure)
                last = GatewayUnavailable(self.name, f"no answer within the {self._tuning.budget_s}s budget")
            except BaseException:
                self._breaker.record_abandoned()  # cancelled, or our own bug: says nothing about the gateway
                raise
            else:
                self._settle(operation, started, "ok", self._breaker.record_success)
                return result
            if attempt < self._policy.attempts:
                await self._sleep(min(self._policy.delay(attempt), budget.remaining()))
        raise last or GatewayUnavailable(self.name, "no time left in the budget to try")

    def _settle(self, operation: str, started: float, outcome: str, record: Callable[[], None]) -> None:
        record()
        GATEWAY_SECONDS.labels(self.name, operation).observe(time.perf_counter() - started)
        self._count(operation, outcome)

    def _count(self, operation: str, outcome: str) -> None:
        GATEWAY_CALLS.labels(self.name, operation, outcome).inc()
        BREAKER_OPEN.labels(self.name).set(0 if self._breaker.state is BreakerState.CLOSED else 1)
