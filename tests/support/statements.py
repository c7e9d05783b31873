"""What an engine sends to PostgreSQL while a block runs: each statement, and whether it ran on an
autocommit connection (its own transaction: no BEGIN or COMMIT went with it)."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine


@dataclasses.dataclass(frozen=True)
class Sent:
    sql: str
    autocommit: bool


@contextlib.contextmanager
def sent_statements(engine: AsyncEngine) -> Iterator[list[Sent]]:
    """BEGIN and COMMIT are not statements here: psycopg sends them itself, so a statement with
    `autocommit` False ran inside a transaction that cost a BEGIN and a COMMIT (or ROLLBACK)."""
    seen: list[Sent] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        seen.append(Sent(statement, bool(conn.connection.dbapi_connection.autocommit)))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
