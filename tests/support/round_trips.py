"""What an engine sends to PostgreSQL while a block runs, as issue 16 counts round trips.

    round_trips(engine)      labels: each statement, each BEGIN psycopg sends before a transaction's
                             first statement, and each COMMIT or ROLLBACK sent on its own. A COMMIT the
                             unit of work pipelines with its outbox/audit write (common/uow.py) rides
                             on that statement, and an autocommit connection sends neither.
    sent_statements(engine)  each statement's SQL and whether it ran on an autocommit connection (its
                             own transaction: no BEGIN or COMMIT went with it)."""

from __future__ import annotations

import contextlib
import dataclasses
import re
from collections.abc import Callable, Iterator
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
def _listening(engine: AsyncEngine, listeners: dict[str, Callable[..., None]]) -> Iterator[None]:
    sync = engine.sync_engine
    for name, listener in listeners.items():
        event.listen(sync, name, listener)
    try:
        yield
    finally:
        for name, listener in listeners.items():
            event.remove(sync, name, listener)


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

    def ending(what: str) -> Callable[[Any], None]:
        def ended(conn: Any) -> None:
            if _driver(conn).info.transaction_status != pq.TransactionStatus.IDLE:
                seen.append(what)
        return ended

    with _listening(engine, {"before_cursor_execute": statement, "commit": ending("COMMIT"),
                             "rollback": ending("ROLLBACK")}):
        yield seen


@dataclasses.dataclass(frozen=True)
class Sent:
    sql: str
    autocommit: bool


@contextlib.contextmanager
def sent_statements(engine: AsyncEngine) -> Iterator[list[Sent]]:
    seen: list[Sent] = []

    def record(conn: Any, cursor: Any, text: str, parameters: Any, context: Any, many: bool) -> None:
        seen.append(Sent(text, bool(_driver(conn).autocommit)))

    with _listening(engine, {"before_cursor_execute": record}):
        yield seen
