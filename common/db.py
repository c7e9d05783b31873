"""The async SQLAlchemy engine of one service (psycopg 3, pooled): built at start-up, never at
import, connected as the service's own role with its schema first on the search path."""

from __future__ import annotations

import psycopg
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from common.metrics import watch_pool
from common.settings import SCHEMAS, Settings


def create_engine(settings: Settings, service: str, *, pool_size: int | None = None,
                  url: str | None = None) -> AsyncEngine:
    """`url`: another server of the same database as the same role (a read replica)."""
    size = pool_size or settings.db_pool_size
    engine = create_async_engine(
        url or settings.service_database_url(service),
        pool_size=size,
        max_overflow=size,
        pool_timeout=5,  # a request waits at most this long for a connection, then fails clearly
        pool_recycle=1800,
        connect_args={"connect_timeout": 5, "application_name": f"checkout-{service}",
                      "options": f"-c search_path={SCHEMAS[service]} "
                                 f"-c statement_timeout={settings.db_statement_timeout_ms}"},
    )
    watch_pool(engine, service)
    return engine


# 08xxx: connection exceptions; 57P01-57P03: the server is shutting down or not accepting yet
_UNREACHABLE_STATES = ("08", "57P01", "57P02", "57P03")


def database_unreachable(error: BaseException) -> bool:
    """PostgreSQL could not be reached, dropped the connection, or every pooled connection is busy
    (the pool's wait ran out), as opposed to refusing a statement (a lock timeout, a constraint):
    the former is the contract's retryable 503 (4001). Looks through the causes too (an error
    re-raised by a wrapper keeps the original as its cause)."""
    seen = 0
    cause: BaseException | None = error
    while cause is not None and seen < 5:
        if _unreachable(cause):
            return True
        cause, seen = cause.__cause__, seen + 1
    return False


def _unreachable(error: BaseException) -> bool:
    if isinstance(error, PoolTimeout):  # QueuePool limit reached, no connection free within pool_timeout
        return True
    if isinstance(error, DBAPIError):
        if error.connection_invalidated:
            return True
        return error.orig is not None and _unreachable(error.orig)
    if isinstance(error, psycopg.InterfaceError):  # the connection is closed (lost, or closed under us)
        return True
    if not isinstance(error, psycopg.OperationalError):
        return False
    return error.sqlstate is None or error.sqlstate.startswith(_UNREACHABLE_STATES)
