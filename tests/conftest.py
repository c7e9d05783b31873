"""Fixtures every test layer shares: real PostgreSQL, Redis and NATS, and a fresh database.

The servers are the machine's own on their standard ports when they answer (or the ones named by
DATABASE_URL / REDIS_URL / NATS_URL), otherwise embedded ones started from the wheels. Each test
session migrates a database of its own and drops it at the end; tests use random tokens so they
can share it and run in any order. Crash tests take a database of their own (own_settings).
"""

from __future__ import annotations

import contextlib
import dataclasses
import pathlib
import uuid
from collections.abc import AsyncIterator, Iterator

import psycopg
import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from common.config import Settings, load_settings
from common.db import create_engine
from devstack.servers import ServerURLs, ensure_servers

ROOT = pathlib.Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def server_urls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerURLs]:
    urls = ensure_servers(tmp_path_factory.mktemp("servers"))
    yield urls
    urls.stop()


def migrate(database_url: str) -> None:
    config = Config(str(ROOT / "migrations" / "alembic.ini"))
    config.attributes["database_url"] = database_url
    command.upgrade(config, "head")


@contextlib.contextmanager
def new_database(server_urls: ServerURLs) -> Iterator[str]:
    """A database of its own on the test server, migrated to head, dropped afterwards."""
    server = make_url(server_urls.database_url)
    name = f"checkout_test_{uuid.uuid4().hex[:12]}"
    admin = _libpq(server.set(database="postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = server.set(database=name).render_as_string(hide_password=False)
    try:
        migrate(url)
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def database_url(server_urls: ServerURLs) -> Iterator[str]:
    """The database this session's tests share."""
    with new_database(server_urls) as url:
        yield url


def _libpq(url) -> str:  # type: ignore[no-untyped-def]
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def settings(database_url: str, server_urls: ServerURLs) -> Settings:
    return dataclasses.replace(
        load_settings(),
        database_url=database_url,
        redis_url=server_urls.redis_url,
        nats_url=server_urls.nats_url,
        cart_metrics_port=0,
        order_metrics_port=0,
        payment_metrics_port=0,
        enrollment_metrics_port=0,
    )


@contextlib.asynccontextmanager
async def seeded_engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    from cart_svc.seed import load_sample_catalog

    engine = create_engine(settings, pool_size=5)
    try:
        async with engine.begin() as conn:
            await load_sample_catalog(conn)
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture(scope="session")
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    async with seeded_engine(settings) as engine:
        yield engine


@pytest.fixture
def own_settings(server_urls: ServerURLs, settings: Settings) -> Iterator[Settings]:
    """Settings pointing at a database of this test alone. Crash tests use it: a relay publishes
    every unpublished outbox row of its database, so in the shared one a kill could land on
    another test's event."""
    with new_database(server_urls) as url:
        yield dataclasses.replace(settings, database_url=url)


@pytest.fixture
async def own_engine(own_settings: Settings) -> AsyncIterator[AsyncEngine]:
    async with seeded_engine(own_settings) as engine:
        yield engine
