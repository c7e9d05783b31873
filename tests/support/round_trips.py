"""The round trips an engine makes to PostgreSQL while a block runs, as issue 16 counts them: each
statement, each BEGIN psycopg sends before a transaction's first statement, and each COMMIT or
ROLLBACK sent on its own. A COMMIT the unit of work pipelines with its outbox/audit write
(common/uow.py) rides on that statement, and an autocommit connection sends neither."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

from psycopg import pq
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

_TABLE = re.compile(r"\b(?:ordering|cart|payment|enrollment)\.(\w+)")


def label(statement: str) -> str:
    """`INSERT idempotency_keys`, `WITH orders`, `SELECT plans`: the verb and the first table named."""
    table = _TABLE.search(statement)
    return f"{statement.split(None, 1)[0].upper()} {table.group(1) if table else '-'}"


def _driver(conn: Any) -> Any:
    return conn.connection.driver_connection


@contextlib.contextmanager
def round_trips(engine: AsyncEngine) -> Iterator[list[str]]:
    """The labels of the round trips `engine` makes while the block runs, in order."""
    seen: list[str] = []

    def statement(conn: Any, cursor: Any, text: str, parameters: Any, context: Any, many: bool) -> None:
        driver = _driver(conn)
        if (not driver.autocommit and driver.info.transaction_status == pq.TransactionStatus.IDLE
                and driver._pipeline is None):
            seen.append("BEGIN")
        seen.append(label(text))

    def ending(what: str) -> Any:
        def ended(conn: Any) -> None:
            if _driver(conn).info.transaction_status != pq.TransactionStatus.IDLE:
                seen.append(what)
        return ended

    commit, rollback = ending("COMMIT"), ending("ROLLBACK")
    sync = engine.sync_engine
    event.listen(sync, "before_cursor_execute", statement)
    event.listen(sync, "commit", commit)
    event.listen(sync, "rollback", rollback)
    try:
        yield seen
    finally:
        event.remove(sync, "before_cursor_execute", statement)
        event.remove(sync, "commit", commit)
        event.remove(sync, "rollback", rollback)
