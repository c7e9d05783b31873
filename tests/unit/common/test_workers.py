"""The background loops every service runs (common/workers.py): a periodic worker logs one warning
when an outage starts and one when it ends, however many passes fail in between; a worker stops
when told, and one that will not is cancelled."""

from __future__ import annotations

import asyncio
import logging

import pytest

from common.workers import Worker, for_role, periodic, sleep_or_stop

pytestmark = pytest.mark.timeout(30)


class Passes:
    """A sweeper's pass that fails or succeeds by a script, and says when the script is done."""

    def __init__(self, script: str) -> None:
        self.script = script  # "F" fails, "." succeeds
        self.done = asyncio.Event()
        self.count = 0

    async def __call__(self) -> None:
        self.count += 1
        if self.count >= len(self.script):
            self.done.set()
        outcome = self.script[min(self.count, len(self.script)) - 1]
        if outcome == "F":
            raise ConnectionError(f"database unreachable (pass {self.count})")


def worker_records(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str]]:
    return [(r.getMessage(), getattr(r, "error", "")) for r in caplog.records if r.name == "common.workers"]


async def run_script(script: str, caplog: pytest.LogCaptureFixture) -> Passes:
    passes = Passes(script)
    with caplog.at_level(logging.INFO, logger="common.workers"):
        worker = periodic("sweeper", 0.001, passes).start()
        await asyncio.wait_for(passes.done.wait(), timeout=10)
        await worker.stop()
    return passes


async def test_one_warning_per_outage_and_one_when_it_is_over(caplog):
    passes = await run_script("..FFFFF..FF.", caplog)
    assert passes.count >= 12
    assert worker_records(caplog) == [
        ("worker pass failed; retrying every interval until it succeeds", "ConnectionError: database unreachable (pass 3)"),
        ("worker recovered", ""),
        ("worker pass failed; retrying every interval until it succeeds", "ConnectionError: database unreachable (pass 10)"),
        ("worker recovered", ""),
    ]
    assert all(r.levelno == logging.WARNING for r in caplog.records if r.name == "common.workers")
    assert all(getattr(r, "worker", None) == "sweeper" for r in caplog.records if r.name == "common.workers")


async def test_a_healthy_worker_logs_nothing(caplog):
    await run_script("......", caplog)
    assert worker_records(caplog) == []


async def test_a_long_outage_is_still_one_warning(caplog):
    await run_script("F" * 50, caplog)
    assert [message for message, _ in worker_records(caplog)] == [
        "worker pass failed; retrying every interval until it succeeds"]


async def test_stop_wakes_a_sleeping_worker_at_once():
    passes = Passes(".")
    worker = periodic("slow", 3600, passes).start()
    await asyncio.wait_for(passes.done.wait(), timeout=5)
    await asyncio.wait_for(worker.stop(timeout=5), timeout=1)  # not after the hour
    assert worker.task is not None and worker.task.done() and not worker.task.cancelled()


async def test_a_worker_that_ignores_stop_is_cancelled(caplog):
    started = asyncio.Event()

    async def stubborn(stop: asyncio.Event) -> None:
        started.set()
        await asyncio.Event().wait()  # never looks at `stop`

    worker = Worker("stubborn", stubborn).start()
    await started.wait()
    with caplog.at_level(logging.WARNING, logger="common.workers"):
        await worker.stop(timeout=0.2)
    assert worker.task is not None and worker.task.cancelled()
    assert "worker did not stop in time; cancelling" in [r.getMessage() for r in caplog.records]


async def test_a_worker_that_dies_is_reported(caplog):
    async def crashes(stop: asyncio.Event) -> None:
        raise ValueError("bug")

    with caplog.at_level(logging.ERROR, logger="common.workers"):
        worker = Worker("fragile", crashes).start()
        assert worker.task is not None
        await asyncio.gather(worker.task, return_exceptions=True)  # its done callbacks ran first
    [record] = [r for r in caplog.records if r.name == "common.workers"]
    assert record.getMessage() == "worker died" and record.worker == "fragile"
    await worker.stop()  # stopping a dead worker is harmless


async def test_sleep_or_stop_returns_when_stopped():
    stop = asyncio.Event()
    stop.set()
    await asyncio.wait_for(sleep_or_stop(stop, 3600), timeout=1)


def test_a_role_picks_the_workers_its_process_runs():
    async def idle(stop: asyncio.Event) -> None:
        await stop.wait()

    relay, listener = Worker("relay", idle), Worker("catalog-listener", idle, serves_requests=True)
    assert for_role("all", [relay, listener]) == [relay, listener]
    assert for_role("api", [relay, listener]) == [listener]  # its cache lives where the calls are answered
    assert for_role("workers", [relay, listener]) == [relay]


def test_only_the_catalog_listener_serves_requests():
    """Every other worker (relays, consumers, sweepers) may run in a process of workers alone."""
    from cart_svc.catalog_cache import CatalogCache
    from cart_svc.workers.catalog_events import catalog_listener
    from common.settings import load_settings

    assert catalog_listener(CatalogCache(60), load_settings({})).serves_requests
