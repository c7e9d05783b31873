"""Alembic environment, shared by the four migration trees (one per service schema).

common/migrations.py runs a tree with config attributes `database_url` (the service's own role)
and `schema`: every statement runs with search_path = that schema, and the version table lives
in it, so a tree can neither see nor touch another service's schema.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool, text


def run_migrations_online() -> None:
    url = context.config.attributes["database_url"]
    schema = context.config.attributes["schema"]
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        connection.execute(text(f'SET search_path TO "{schema}"'))
        connection.commit()
        context.configure(connection=connection, target_metadata=None, transaction_per_migration=True,
                          version_table_schema=schema)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations_online()
