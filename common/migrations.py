"""Each service's database: its role and schema (bootstrap, as the administrator), then its own
migration tree (upgrade, as its role). `make run` and the tests run both; so does a deployment's
migration job.

    python -m common.migrations bootstrap [SERVICE…]  roles and schemas (DATABASE_URL: an administrator)
    python -m common.migrations upgrade [SERVICE…]    each service's tree, as that service's role
    python -m common.migrations setup [SERVICE…]      both (default: all four services)
    python -m common.migrations revision SERVICE -m "what it does"
                                                      a new, empty migration at the head of a tree

A role may use only its own schema: it owns it, and nobody is granted another's (PostgreSQL 15+
also gives PUBLIC no CREATE on `public`; bootstrap revokes it for older servers). A password in a
service's URL becomes its role's password; without one the role logs in as pg_hba allows (trust
on the embedded development server).

Every command is safe to run again, and beside another run on the same database (two `make run`,
a deployment's migration job started twice): each holds the database's migration advisory lock
while it works, so the second waits and then finds nothing left to do.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import pathlib
import struct
import sys
import time
from collections.abc import Iterator

import psycopg
from alembic import command
from alembic.config import Config
from psycopg import sql
from sqlalchemy.engine import make_url

from common.settings import ROLES, SCHEMAS, SERVICES, Settings, load_settings

ROOT = pathlib.Path(__file__).resolve().parent.parent
MIGRATIONS = ROOT / "migrations"
# The advisory lock every migration command of a database holds while it works (any role may take one).
LOCK_KEY = struct.unpack(">q", hashlib.sha256(b"checkout-migrations").digest()[:8])[0]


def libpq(database_url: str) -> str:
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextlib.contextmanager
def exclusive(database_url: str) -> Iterator[None]:
    """Hold the database's migration lock (a session-level advisory lock, freed if we die)."""
    with psycopg.connect(libpq(database_url), autocommit=True, application_name="checkout-migrations") as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))


def bootstrap(settings: Settings, services: tuple[str, ...] = SERVICES) -> None:
    """Create each service's role (if missing) and schema (owned by it). Safe to run again, and
    beside another bootstrap of the same cluster (roles are cluster-wide: a race is retried)."""
    with exclusive(settings.database_url), psycopg.connect(libpq(settings.database_url), autocommit=True) as conn:
        conn.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
        for service in services:
            role, schema = ROLES[service], SCHEMAS[service]
            password = make_url(settings.service_database_url(service)).password
            _ensure_role(conn, role, password)
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {} AUTHORIZATION {}").format(
                sql.Identifier(schema), sql.Identifier(role)))
            conn.execute(sql.SQL("REVOKE ALL ON SCHEMA {} FROM PUBLIC").format(sql.Identifier(schema)))


def _ensure_role(conn: psycopg.Connection, role: str, password: str | None) -> None:
    for attempt in range(5):
        try:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
            if exists is None:
                conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
            if password:
                conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(role), sql.Literal(password)))
            return
        except (psycopg.errors.DuplicateObject, psycopg.errors.UniqueViolation, psycopg.errors.InternalError_):
            # another bootstrap of the cluster created or altered it a moment ago ("tuple concurrently updated")
            time.sleep(0.05 * (attempt + 1))
    raise SystemExit(f"could not create role {role}")


def alembic_config(service: str, database_url: str) -> Config:
    config = Config(str(MIGRATIONS / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("version_locations", str(MIGRATIONS / SCHEMAS[service] / "versions"))
    config.attributes["database_url"] = database_url
    config.attributes["schema"] = SCHEMAS[service]
    return config


def upgrade(settings: Settings, services: tuple[str, ...] = SERVICES, revision: str = "heads") -> None:
    """Each service's tree to `revision` ("base": all the way down), as the service's own role, holding
    the lock of the service's database."""
    for service in services:
        url = settings.service_database_url(service)
        config = alembic_config(service, url)
        with exclusive(url):
            if revision == "base":
                command.downgrade(config, revision)
            else:
                command.upgrade(config, revision)


def setup(settings: Settings, services: tuple[str, ...] = SERVICES) -> None:
    bootstrap(settings, services)
    upgrade(settings, services)


def revision(settings: Settings, service: str, message: str) -> pathlib.Path:
    """A new migration file at the head of `service`'s tree (no database needed)."""
    config = alembic_config(service, settings.service_database_url(service))
    script = command.revision(config, message=message, head="heads")
    if script is None or isinstance(script, list):
        raise SystemExit(f"alembic made no single revision for {service}")
    return pathlib.Path(script.path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m common.migrations", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="action", required=True)
    for action in ("bootstrap", "upgrade", "setup"):
        one = sub.add_parser(action)
        one.add_argument("services", nargs="*", metavar="SERVICE", help=f"of {', '.join(SERVICES)}; default: all")
    new = sub.add_parser("revision", help="a new migration in one service's tree")
    new.add_argument("service", choices=SERVICES)
    new.add_argument("-m", "--message", required=True)
    args = parser.parse_args(argv)
    settings = load_settings()
    if args.action == "revision":
        print(revision(settings, args.service, args.message))
        return 0
    unknown = [name for name in args.services if name not in SERVICES]
    if unknown:
        parser.error(f"unknown services {unknown}; known: {', '.join(SERVICES)}")
    services = tuple(args.services) or SERVICES
    try:
        {"bootstrap": bootstrap, "upgrade": upgrade, "setup": setup}[args.action](settings, services)
    except psycopg.OperationalError as error:
        raise SystemExit(f"migrations: cannot reach PostgreSQL: {error}".strip()) from None
    return 0


if __name__ == "__main__":
    sys.exit(main())
