"""cart_svc/tables.py agrees with what migrations/cart created in schema `cart`, as cart_svc's own role
sees it."""

from __future__ import annotations

from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncEngine

from cart_svc.tables import SCHEMA, metadata


async def test_every_described_table_and_column_exists(cart_engine: AsyncEngine) -> None:
    def columns(sync) -> dict[str, dict[str, str]]:  # type: ignore[no-untyped-def]
        inspector = inspect(sync)
        return {table: {c["name"]: str(c["type"]) for c in inspector.get_columns(table, schema=SCHEMA)}
                for table in inspector.get_table_names(schema=SCHEMA)}

    async with cart_engine.connect() as conn:
        actual = await conn.run_sync(columns)
    for table in metadata.sorted_tables:
        assert table.schema == SCHEMA
        assert table.name in actual, table.name
        assert set(actual[table.name]) == {column.name for column in table.columns}, table.name
    assert actual["cart_conversions"]["snapshot"] == "JSONB"  # migration cart_0002
    assert "alembic_version" in actual  # the cart tree's version table lives in its own schema
