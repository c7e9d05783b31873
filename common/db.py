"""The async SQLAlchemy engine (psycopg 3, pooled): one per process, built at start-up, never at import."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from common.config import Settings


def create_engine(settings: Settings, *, pool_size: int | None = None) -> AsyncEngine:
    size = pool_size or settings.db_pool_size
    return create_async_engine(
        settings.database_url,
        pool_size=size,
        max_overflow=size,
        pool_timeout=5,  # a request waits at most this long for a connection, then fails clearly
        pool_recycle=1800,
        connect_args={"connect_timeout": 5, "application_name": "checkout"},
    )
