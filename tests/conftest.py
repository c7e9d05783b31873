"""Fixtures every test layer shares: real PostgreSQL, Redis and NATS, and a fresh database.

The servers are the machine's own on their standard ports when they answer (or the ones named by
DATABASE_URL / REDIS_URL / NATS_URL), otherwise embedded ones started from the wheels. Each test
session creates a database of its own, bootstraps each service's role and schema in it, migrates
the four trees and drops it at the end; tests use random tokens so they can share it and run in
any order.

    settings            the session's Settings (its database, the servers, no metrics ports)
    cart_engine …       one engine per service, connected as that service's role
    admin_engine        the database's administrator: for tests that look across schemas
"""

from __future__ import annotations

import os
import pathlib
import uuid
from collections.abc import AsyncIterator, Iterator

import psycopg
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from common.db import create_engine
from common.migrations import libpq, setup
from common.settings import Settings, load_settings
from devstack.servers import ServerURLs, ensure_servers

ROOT = pathlib.Path(__file__).resolve().parent.parent

# The suite's services speak plaintext gRPC: the explicit development switch, set here for every
# test and every process a test starts (they inherit the environment). The tests of mutual TLS
# and the caller table (tests/integration/common/test_mtls.py, tests/e2e/test_edge_tls.py) turn it
# off for the servers they start and give them certificates.
os.environ.setdefault("GRPC_PLAINTEXT", "1")


@pytest.fixture(scope="session")
def server_urls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerURLs]:
    urls = ensure_servers(tmp_path_factory.mktemp("servers"))
    yield urls
    urls.stop()


def new_database(server_url: str, prefix: str = "checkout_test") -> str:
    """A new, empty database on the server of `server_url`; returns its administrator URL."""
    server = make_url(server_url)
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(libpq(server.set(database="postgres").render_as_string(hide_password=False)),
                         autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return server.set(database=name).render_as_string(hide_password=False)


def drop_database(database_url: str) -> None:
    url = make_url(database_url)
    with psycopg.connect(libpq(url.set(database="postgres").render_as_string(hide_password=False)),
                         autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{url.database}" WITH (FORCE)')


def settings_for(database_url: str, urls: ServerURLs) -> Settings:
    """Settings for a migrated database of the tests (metrics off: many processes share the box)."""
    return load_settings().replace(
        database_url=database_url, redis_url=urls.redis_url, nats_url=urls.nats_url,
        cart_metrics_port=0, order_metrics_port=0, payment_metrics_port=0, enrollment_metrics_port=0,
    )


@pytest.fixture(scope="session")
def database_url(server_urls: ServerURLs) -> Iterator[str]:
    """A database of this session's own, each service's schema migrated, dropped afterwards."""
    url = new_database(server_urls.database_url)
    setup(load_settings().replace(database_url=url))
    yield url
    drop_database(url)


@pytest.fixture(scope="session")
def settings(database_url: str, server_urls: ServerURLs) -> Settings:
    return settings_for(database_url, server_urls)


async def _engine(settings: Settings, service: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings, service, pool_size=5)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
async def cart_engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    from cart_svc.seed import load_sample_catalog

    async for engine in _engine(settings, "cart"):
        async with engine.begin() as conn:
            await load_sample_catalog(conn)
        yield engine


@pytest.fixture(scope="session")
async def order_engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    async for engine in _engine(settings, "order"):
        yield engine


@pytest.fixture(scope="session")
async def payment_engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    async for engine in _engine(settings, "payment"):
        yield engine


@pytest.fixture(scope="session")
async def enrollment_engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    async for engine in _engine(settings, "enrollment"):
        yield engine


@pytest.fixture(scope="session")
async def admin_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(database_url, pool_size=2)
    yield engine
    await engine.dispose()


@pytest.fixture
def own_settings(server_urls: ServerURLs) -> Iterator[Settings]:
    """Settings pointing at a database of this test alone, every schema migrated. Crash tests use
    it: a service's relay publishes every unpublished outbox row of its schema, so in the shared
    database a kill could land on another test's event."""
    url = new_database(server_urls.database_url)
    try:
        setup(load_settings().replace(database_url=url))
        yield settings_for(url, server_urls)
    finally:
        drop_database(url)
