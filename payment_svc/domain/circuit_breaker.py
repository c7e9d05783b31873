"""A circuit breaker for one gateway: closed → open → half-open → closed, decided without I/O.

    closed ──(failure_threshold consecutive failures)──► open
    open ──(cooldown_s elapsed)──► half-open: up to `half_open_calls` trial calls go through
    half-open ──trial succeeds──► closed        half-open ──trial fails──► open (a new cool-down)

Only availability failures count (connection errors, timeouts, 5xx, 429); a gateway that answers
a request with 4xx is up, so that is recorded as a success. The clock is injected (monotonic
seconds), so tests drive time by hand.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable


class BreakerState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    def __init__(self, *, failure_threshold: int = 5, cooldown_s: float = 30.0, half_open_calls: int = 1,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if failure_threshold < 1 or cooldown_s < 0 or half_open_calls < 1:
            raise ValueError("failure_threshold and half_open_calls must be >= 1, cooldown_s >= 0")
        self._threshold = failure_threshold
        self._cooldown = cooldown_s
        self._half_open_calls = half_open_calls
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trials_in_flight = 0

    @property
    def state(self) -> BreakerState:
        if self._state is BreakerState.OPEN and self._clock() - self._opened_at >= self._cooldown:
            self._state = BreakerState.HALF_OPEN
            self._trials_in_flight = 0
        return self._state

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    def allow(self) -> bool:
        """May a call go out now? In half-open this reserves one of the trial slots; every allowed
        call must end in exactly one record_success / record_failure / record_abandoned."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.OPEN:
            return False
        if self._trials_in_flight >= self._half_open_calls:
            return False
        self._trials_in_flight += 1
        return True

    def record_success(self) -> None:
        self._failures = 0
        if self._state is BreakerState.HALF_OPEN:
            self._state = BreakerState.CLOSED
            self._trials_in_flight = 0

    def record_failure(self) -> None:
        if self._state is BreakerState.HALF_OPEN:
            self._open()
            return
        if self._state is BreakerState.OPEN:
            return  # a call that started before the breaker opened
        self._failures += 1
        if self._failures >= self._threshold:
            self._open()

    def record_abandoned(self) -> None:
        """The call ended without telling us anything about the gateway (cancelled): free its slot."""
        if self._state is BreakerState.HALF_OPEN and self._trials_in_flight > 0:
            self._trials_in_flight -= 1

    def seconds_until_trial(self) -> float:
        if self.state is not BreakerState.OPEN:
            return 0.0
        return max(0.0, self._cooldown - (self._clock() - self._opened_at))

    def _open(self) -> None:
        self._state = BreakerState.OPEN
        self._opened_at = self._clock()
        self._failures = 0
        self._trials_in_flight = 0
