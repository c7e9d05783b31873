"""Each service's role and schema (common/migrations.py) on real PostgreSQL: `python -m
common.migrations setup` can run again and twice at once; each service's role reads and writes
only its own schema; each migration tree creates, owns and drops objects only in its schema."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import pathlib
import subprocess
import sys
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import make_url

from common.migrations import bootstrap, libpq, upgrade
from common.settings import ROLES, SCHEMAS, SERVICES, Settings, load_settings
from devstack.servers import ServerURLs
from tests.conftest import drop_database, new_database
from tests.support.processes import inherited_env

ROOT = pathlib.Path(__file__).resolve().parents[3]

pytestmark = pytest.mark.timeout(180)

# what each service's first migration makes (besides the plumbing tables every schema has)
OWN_TABLES = {"cart": "carts", "order": "orders", "payment": "payment_sessions", "enrollment": "enrollments"}
PLUMBING = ("outbox", "audit_log", "dead_letters")


@pytest.fixture
def empty_database(server_urls: ServerURLs) -> Iterator[str]:
    """The administrator's URL of a new database with nothing in it."""
    url = new_database(server_urls.database_url, prefix="checkout_migrations")
    yield url
    drop_database(url)


def migrate_cli(database_url: str, *args: str) -> subprocess.Popen[str]:
    env = inherited_env() | {"DATABASE_URL": database_url}
    for service in SERVICES:
        env.pop(f"{service.upper()}_DATABASE_URL", None)
    return subprocess.Popen([sys.executable, "-m", "common.migrations", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finished(process: subprocess.Popen[str]) -> tuple[int, str]:
    output, _ = process.communicate(timeout=150)
    return process.returncode, output


@contextlib.contextmanager
def connect(database_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(libpq(database_url), autocommit=True) as conn:
        yield conn


def objects_by_schema(admin_url: str) -> dict[str, set[tuple[str, str, str]]]:
    """Every relation, function and type outside the system schemas: schema -> {(kind, name, owner)}."""
    query = """
        SELECT n.nspname, 'rel:' || c.relkind::text, c.relname, pg_get_userbyid(c.relowner)
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        UNION ALL
        SELECT n.nspname, 'function', p.proname, pg_get_userbyid(p.proowner)
          FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        UNION ALL
        SELECT n.nspname, 'type', t.typname, pg_get_userbyid(t.typowner)
          FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
         WHERE t.typtype IN ('e', 'd', 'c') AND t.typrelid = 0
    """
    found: dict[str, set[tuple[str, str, str]]] = {}
    with connect(admin_url) as conn:
        for schema, kind, name, owner in conn.execute(query):
            if schema in ("pg_catalog", "information_schema", "pg_toast") or schema.startswith("pg_"):
                continue
            found.setdefault(schema, set()).add((kind, name, owner))
    return found


def heads(admin_url: str) -> dict[str, list[str]]:
    with connect(admin_url) as conn:
        return {service: [row[0] for row in conn.execute(
            sql.SQL("SELECT version_num FROM {}.alembic_version").format(sql.Identifier(SCHEMAS[service])))]
            for service in SERVICES}


def test_setup_can_run_again_and_twice_at_once(empty_database):
    first, second = migrate_cli(empty_database, "setup"), migrate_cli(empty_database, "setup")
    for process in (first, second):
        code, output = finished(process)
        assert code == 0, output
    migrated = heads(empty_database)
    assert all(len(versions) == 1 for versions in migrated.values()), migrated
    before = objects_by_schema(empty_database)

    code, output = finished(migrate_cli(empty_database, "setup"))  # and once more, on a migrated database
    assert code == 0, output
    assert heads(empty_database) == migrated and objects_by_schema(empty_database) == before


def test_two_bootstraps_of_one_cluster_at_once(server_urls: ServerURLs):
    """Roles are cluster-wide: two databases bootstrapped at the same moment both succeed."""
    urls = [new_database(server_urls.database_url, prefix="checkout_migrations") for _ in range(2)]
    try:
        processes = [migrate_cli(url, "bootstrap") for url in urls]
        for process in processes:
            code, output = finished(process)
            assert code == 0, output
        for url in urls:
            with connect(url) as conn:
                owners = dict(conn.execute("SELECT nspname, pg_get_userbyid(nspowner) FROM pg_namespace"))
            assert {SCHEMAS[s]: owners[SCHEMAS[s]] for s in SERVICES} == {SCHEMAS[s]: ROLES[s] for s in SERVICES}
    finally:
        for url in urls:
            drop_database(url)


def test_each_tree_creates_owns_and_drops_only_its_own_schema(empty_database):
    settings = load_settings().replace(database_url=empty_database)
    bootstrap(settings)
    untouched = objects_by_schema(empty_database)
    assert not any(untouched.get(SCHEMAS[s]) for s in SERVICES)  # bootstrap makes empty schemas
    previous = untouched
    for service in SERVICES:
        upgrade(settings, (service,))
        now = objects_by_schema(empty_database)
        changed = {schema for schema in set(now) | set(previous) if now.get(schema) != previous.get(schema)}
        assert changed == {SCHEMAS[service]}, (service, changed)
        mine = now[SCHEMAS[service]]
        assert {owner for _, _, owner in mine} == {ROLES[service]}, mine
        names = {name for kind, name, _ in mine if kind == "rel:r"}
        assert {*PLUMBING, OWN_TABLES[service], "alembic_version"} <= names, names
        previous = now
    assert not previous.get("public")  # nothing anywhere else

    for service in SERVICES:  # and back down: each tree removes only what it made
        upgrade(settings, (service,), revision="base")
        now = objects_by_schema(empty_database)
        left = {name for kind, name, _ in now[SCHEMAS[service]]}
        assert left <= {"alembic_version", "alembic_version_pkc"}, left
        others = {s: v for s, v in now.items() if s != SCHEMAS[service]}
        assert others == {s: v for s, v in previous.items() if s != SCHEMAS[service]}
        previous = now


def tables_of(admin_url: str, schema: str) -> dict[str, str]:
    """table -> its first column"""
    with connect(admin_url) as conn:
        return dict(conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = %s "
            "AND table_name <> 'alembic_version' AND ordinal_position = 1", (schema,)))


def denied(role_url: str, statement: sql.Composable) -> bool:
    with connect(role_url) as conn:
        try:
            conn.execute(statement)
        except psycopg.errors.InsufficientPrivilege:
            return True
    return False


@pytest.mark.parametrize(("service", "other"), list(itertools.permutations(SERVICES, 2)))
def test_a_services_role_can_neither_read_nor_write_another_services_schema(settings: Settings, database_url: str,
                                                                           service: str, other: str):
    """checkout_order cannot write payment.*, checkout_payment cannot write ordering.*, and so on
    for every pair; every table of the other schema, every kind of access."""
    mine = settings.service_database_url(service)
    schema = SCHEMAS[other]
    tables = tables_of(database_url, schema)
    assert {*PLUMBING, OWN_TABLES[other]} <= set(tables)
    for table, column in tables.items():
        target, col = sql.Identifier(schema, table), sql.Identifier(column)
        for query in (sql.SQL("SELECT * FROM {} LIMIT 1").format(target),
                      sql.SQL("DELETE FROM {}").format(target),
                      sql.SQL("UPDATE {} SET {} = {} WHERE false").format(target, col, col),
                      sql.SQL("INSERT INTO {} DEFAULT VALUES").format(target),
                      sql.SQL("TRUNCATE {}").format(target),
                      sql.SQL("BEGIN; LOCK TABLE {} IN SHARE MODE; ROLLBACK").format(target)):
            assert denied(mine, query), (ROLES[service], query.as_string(None))
    assert denied(mine, sql.SQL("CREATE TABLE {} (x int)").format(sql.Identifier(schema, "intruder")))
    assert denied(mine, sql.SQL("ALTER SCHEMA {} RENAME TO taken").format(sql.Identifier(schema)))


@pytest.mark.parametrize("service", SERVICES)
def test_a_services_role_uses_its_own_schema_and_nothing_else(settings: Settings, service: str):
    mine = settings.service_database_url(service)
    schema = SCHEMAS[service]
    with connect(mine) as conn:
        assert conn.execute("SHOW search_path").fetchone() is not None
        conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, "outbox")))
        with conn.transaction(force_rollback=True):  # its own tables: read, write, create
            conn.execute(sql.SQL("INSERT INTO {} (id, aggregate_id, subject, payload) "
                                 "VALUES (gen_random_uuid(), 'a', 'checkout.x', '{{}}')").format(
                sql.Identifier(schema, "outbox")))
            conn.execute(sql.SQL("CREATE TABLE {} (x int)").format(sql.Identifier(schema, "scratch_probe")))
        audit_log = sql.Identifier(schema, "audit_log")
        for rewrite in (sql.SQL("UPDATE {} SET actor = 'x'"), sql.SQL("DELETE FROM {}"), sql.SQL("TRUNCATE {}")):
            with pytest.raises(psycopg.errors.RaiseException, match="append-only"), \
                    conn.transaction(force_rollback=True):  # even its owner cannot rewrite the audit log
                conn.execute(sql.SQL("INSERT INTO {} (actor, entity_type, entity_id, action) "
                                     "VALUES ('t', 't', 't', 't')").format(audit_log))
                conn.execute(rewrite.format(audit_log))
    assert denied(mine, sql.SQL("CREATE TABLE public.intruder (x int)"))
    assert denied(mine, sql.SQL("CREATE SCHEMA intruder"))


def test_bootstrap_gives_each_role_the_password_of_its_url(empty_database):
    urls = {f"{s}_database_url": make_url(load_settings().replace(database_url=empty_database)
                                          .service_database_url(s)).set(password=f"pw-{s}")
            .render_as_string(hide_password=False) for s in SERVICES}
    try:
        bootstrap(load_settings().replace(database_url=empty_database, **urls))
        with connect(empty_database) as conn:
            stored = dict(conn.execute("SELECT rolname, rolpassword IS NOT NULL FROM pg_authid WHERE rolname = ANY(%s)",
                                       (list(ROLES.values()),)))
        assert stored == {role: True for role in ROLES.values()}
    finally:  # the roles are the cluster's: leave them as the other tests expect (no password)
        with connect(empty_database) as conn:
            for role in ROLES.values():
                conn.execute(sql.SQL("ALTER ROLE {} PASSWORD NULL").format(sql.Identifier(role)))


async def test_setup_in_process_is_idempotent_too(empty_database):
    settings = load_settings().replace(database_url=empty_database)
    from common.migrations import setup

    await asyncio.to_thread(setup, settings)
    once = objects_by_schema(empty_database)
    await asyncio.gather(asyncio.to_thread(setup, settings), asyncio.to_thread(setup, settings))
    assert objects_by_schema(empty_database) == once
