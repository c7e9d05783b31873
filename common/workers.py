"""Background loops of a service process (relays, consumers, sweepers): started by the service's
`assemble`, stopped gracefully at shutdown.

`Worker` runs `run(stop)` as an asyncio task. `periodic` builds the loop every sweeper uses: one
pass every interval, a failed pass logged once per outage (not a traceback per interval) and its
end logged when a pass succeeds again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

_log = logging.getLogger(__name__)

Run = Callable[[asyncio.Event], Coroutine[Any, Any, None]]
T = TypeVar("T")


async def sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    """Sleep, but wake at once when `stop` is set."""
    try:
        await asyncio.wait_for(stop.wait(), timeout=max(0.0, seconds))
    except TimeoutError:
        pass


async def unless_stopped(stop: asyncio.Event, work: Awaitable[T]) -> T | None:
    """`work`'s result, or None as soon as `stop` is set (then `work` is cancelled): a shutdown
    never waits out a connect timeout."""
    task = asyncio.ensure_future(work)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
    if task.done():
        return task.result()
    task.cancel()
    try:
        await task
    except (asyncio.CancelledError, Exception):
        pass
    return None


class Worker:
    """A long-running loop `run(stop)`; `start()` makes it a task, `stop()` ends it gracefully.
    `serves_requests`: it keeps state of the process that answers calls (an in-process cache), so
    it runs in that process (SERVICE_ROLE `all` or `api`), never in a process of workers alone."""

    def __init__(self, name: str, run: Run, *, serves_requests: bool = False) -> None:
        self.name = name
        self.serves_requests = serves_requests
        self._run = run
        self.stop_event = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    def start(self) -> Worker:
        self.task = asyncio.create_task(self._run(self.stop_event), name=self.name)
        self.task.add_done_callback(self._report)
        return self

    def _report(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            _log.error("worker died", extra={"worker": self.name}, exc_info=task.exception())
        elif not self.stop_event.is_set():
            _log.error("worker ended without being stopped", extra={"worker": self.name})

    async def stop(self, timeout: float = 10.0) -> None:
        self.stop_event.set()
        if self.task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self.task), timeout=timeout)
        except TimeoutError:
            _log.warning("worker did not stop in time; cancelling", extra={"worker": self.name})
            self.task.cancel()
            try:
                await self.task
            except (asyncio.CancelledError, Exception):
                pass
        except Exception:
            pass  # already logged by _report


def for_role(role: str, workers: list[Worker]) -> list[Worker]:
    """The workers a process of SERVICE_ROLE `role` runs: `api` only those that serve its requests,
    `workers` all the others, `all` every one."""
    if role == "all":
        return list(workers)
    return [worker for worker in workers if worker.serves_requests == (role == "api")]


def periodic(name: str, interval_s: float, one_pass: Callable[[], Awaitable[object]]) -> Worker:
    """A worker running `one_pass()` every `interval_s` seconds until stopped."""

    async def run(stop: asyncio.Event) -> None:
        failing = False
        while not stop.is_set():
            try:
                await one_pass()
                if failing:
                    _log.warning("worker recovered", extra={"worker": name})
                    failing = False
            except asyncio.CancelledError:
                raise
            except Exception as error:
                if not failing:
                    _log.warning("worker pass failed; retrying every interval until it succeeds",
                                 extra={"worker": name, "error": f"{type(error).__name__}: {error}"})
                    failing = True
            await sleep_or_stop(stop, interval_s)

    return Worker(name, run)
