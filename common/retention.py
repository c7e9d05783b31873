"""Pruning of what a service keeps only for a while: published outbox rows, replayed dead letters,
and (payment_svc) the raw bodies of processed webhook events, whose rows stay.

One pass every RETENTION_INTERVAL seconds in every process of the service; the pass that gets the
schema's transaction-level advisory lock prunes, the others find it taken and skip (no connection
is held between passes, and a crashed leader's lock ends with its transaction). Each task deletes
or trims at most `batch` rows per statement and repeats until none is left, so one pass never holds
a long lock. `checkout_pruned_rows_total{schema,what}` counts what went.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import struct
from collections.abc import Sequence

from prometheus_client import Counter
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from common.settings import Settings
from common.workers import Worker, periodic

_log = logging.getLogger(__name__)
PRUNED = Counter("checkout_pruned_rows_total", "rows deleted or trimmed by retention", ["schema", "what"])
BATCH = 1000
_DAY_SECONDS = 86400.0


@dataclasses.dataclass(frozen=True)
class PruneTask:
    """`statement` deletes or trims at most :batch rows older than :max_age_s seconds; returns their count."""

    what: str
    statement: str
    max_age_s: float


def plumbing_tasks(schema: str, settings: Settings) -> list[PruneTask]:
    """What every service prunes in its schema's plumbing tables (common/plumbing.py)."""
    return [
        PruneTask("outbox", f"""
            DELETE FROM {schema}.outbox WHERE id IN (
                SELECT id FROM {schema}.outbox
                WHERE published_at < now() - make_interval(secs => :max_age_s) LIMIT :batch)""",
                  settings.retention_outbox_days * _DAY_SECONDS),
        PruneTask("dead_letters", f"""
            DELETE FROM {schema}.dead_letters WHERE dead_letter_id IN (
                SELECT dead_letter_id FROM {schema}.dead_letters
                WHERE status = 'replayed' AND replayed_at < now() - make_interval(secs => :max_age_s)
                LIMIT :batch)""",
                  settings.retention_dead_letter_days * _DAY_SECONDS),
    ]


def lock_key(schema: str) -> int:
    return struct.unpack(">q", hashlib.sha256(f"retention:{schema}".encode()).digest()[:8])[0]


class Pruner:
    def __init__(self, engine: AsyncEngine, schema: str, tasks: Sequence[PruneTask], *, batch: int = BATCH) -> None:
        self._engine = engine
        self._schema = schema
        self._tasks = list(tasks)
        self._batch = batch

    async def one_pass(self) -> dict[str, int] | None:
        """Rows pruned per task, or None when another process holds this pass."""
        pruned = dict.fromkeys((task.what for task in self._tasks), 0)
        async with self._engine.connect() as conn:
            for task in self._tasks:
                while True:
                    async with conn.begin():
                        leading = (await conn.execute(text("SELECT pg_try_advisory_xact_lock(:key)"),
                                                      {"key": lock_key(self._schema)})).scalar_one()
                        if not leading:
                            return None
                        count = (await conn.execute(text(task.statement),
                                                    {"max_age_s": task.max_age_s, "batch": self._batch})).rowcount
                    pruned[task.what] += count
                    PRUNED.labels(self._schema, task.what).inc(count)
                    if count < self._batch:
                        break
        if any(pruned.values()):
            _log.info("retention pass", extra={"schema": self._schema, "pruned": pruned})
        return pruned


def retention_worker(engine: AsyncEngine, schema: str, settings: Settings,
                     extra: Sequence[PruneTask] = ()) -> Worker | None:
    if settings.retention_interval <= 0:
        return None
    pruner = Pruner(engine, schema, [*plumbing_tasks(schema, settings), *extra])
    return periodic(f"{schema}-retention", settings.retention_interval, pruner.one_pass)
