"""Bounded retries with exponential backoff and full jitter, for calls that are safe to repeat."""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3
    first_delay: float = 0.1
    max_delay: float = 2.0
    factor: float = 2.0

    def delay(self, failed_attempt: int) -> float:
        """Full jitter (AWS architecture blog): uniform in [0, capped exponential]."""
        ceiling = min(self.max_delay, self.first_delay * self.factor ** (failed_attempt - 1))
        return random.uniform(0, ceiling)


async def retrying(call: Callable[[], Awaitable[T]], policy: RetryPolicy, retryable: Callable[[BaseException], bool]) -> T:
    """Run `call` up to `policy.attempts` times; the last error is raised as it is."""
    for attempt in range(1, policy.attempts + 1):
        try:
            return await call()
        except Exception as error:
            if attempt == policy.attempts or not retryable(error):
                raise
            await asyncio.sleep(policy.delay(attempt))
    raise AssertionError("unreachable")
