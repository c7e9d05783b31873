"""Each service's SQLAlchemy tables (its tables.py) agree with what its migration tree created in
its schema, and the PRD's indexes exist where their owners put them."""

from __future__ import annotations

import importlib

import pytest
from sqlalchemy import inspect, text

from common.settings import SCHEMAS

SERVICES = {"cart": "cart_svc.tables", "order": "order_svc.tables", "payment": "payment_svc.tables",
            "enrollment": "enrollment_svc.tables"}


@pytest.mark.parametrize("service", sorted(SERVICES))
async def test_every_described_table_and_column_exists_in_the_services_schema(service, admin_engine) -> None:
    metadata = importlib.import_module(SERVICES[service]).metadata
    schema = SCHEMAS[service]

    def columns(sync):  # type: ignore[no-untyped-def]
        found = inspect(sync)
        return {t: {c["name"] for c in found.get_columns(t, schema=schema)} for t in found.get_table_names(schema=schema)}

    async with admin_engine.connect() as conn:
        actual = await conn.run_sync(columns)
    described = {t.name: {c.name for c in t.columns} for t in metadata.sorted_tables}
    assert {t.schema for t in metadata.sorted_tables} == {schema}
    assert described == {name: actual[name] for name in described}, f"{service}: tables.py and migrations differ"
    assert set(actual) - set(described) == {"alembic_version"}, "a table the code does not describe"


async def test_prd_indexes_exist_in_their_owners_schemas(admin_engine) -> None:
    async with admin_engine.connect() as conn:
        names = {(row.schemaname, row.indexname) for row in await conn.execute(
            text("SELECT schemaname, indexname FROM pg_indexes"))}
    expected = {
        ("cart", "idx_carts_user_id"), ("cart", "idx_carts_status"), ("cart", "idx_carts_expires_at"),
        ("cart", "idx_carts_device_id"), ("ordering", "idx_orders_cart_token"), ("ordering", "idx_orders_user_id"),
        ("ordering", "idx_orders_status"), ("ordering", "idx_orders_payment_token"),
        ("payment", "idx_payment_sessions_status"), ("payment", "idx_payment_sessions_expires_at"),
        ("payment", "idx_payment_sessions_gateway_order"),
    }
    assert expected <= names
