"""Which database failures are the contract's retryable 503 (4001): only PostgreSQL being out of
reach, never a statement it refused (those stay 5000 and go to the log)."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import errors
from sqlalchemy.exc import IntegrityError, OperationalError

from common.db import database_unreachable


@pytest.mark.parametrize("orig", [
    psycopg.OperationalError("connection failed: Connection refused"),  # no server answered: no SQLSTATE
    errors.ConnectionFailure("server closed the connection"),  # 08006
    errors.AdminShutdown("terminating connection due to administrator command"),  # 57P01
    errors.CannotConnectNow("the database system is starting up"),  # 57P03
], ids=lambda orig: type(orig).__name__)
def test_out_of_reach(orig: Exception) -> None:
    assert database_unreachable(OperationalError("SELECT 1", {}, orig))


def test_a_connection_dropped_mid_statement() -> None:
    assert database_unreachable(OperationalError("SELECT 1", {}, psycopg.InterfaceError("x"), connection_invalidated=True))


@pytest.mark.parametrize("error", [
    OperationalError("SELECT 1", {}, errors.LockNotAvailable("lock timeout")),  # 55P03
    OperationalError("SELECT 1", {}, errors.QueryCanceled("statement timeout")),  # 57014
    IntegrityError("INSERT", {}, errors.UniqueViolation("duplicate key")),
    ConnectionRefusedError("not the database"),
], ids=lambda error: type(getattr(error, "orig", error)).__name__)
def test_refused_statements_and_other_errors_are_not(error: Exception) -> None:
    assert not database_unreachable(error)


def test_an_exhausted_pool_and_a_closed_connection() -> None:
    from sqlalchemy.exc import InterfaceError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    assert database_unreachable(PoolTimeout("QueuePool limit of size 1 overflow 0 reached, connection timed out"))
    assert database_unreachable(InterfaceError("SELECT 1", {}, psycopg.InterfaceError("the connection is closed")))
    assert database_unreachable(psycopg.InterfaceError("the connection is lost"))
    wrapped = RuntimeError("while reading")
    wrapped.__cause__ = PoolTimeout("pool")
    assert database_unreachable(wrapped)  # through its cause
