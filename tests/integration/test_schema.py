"""The Core table descriptions in common/tables.py agree with what the migration created."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import DBAPIError

from common.tables import metadata


async def test_every_described_column_exists(engine) -> None:
    async with engine.connect() as conn:
        actual = await conn.run_sync(lambda sync: {t: {c["name"] for c in inspect(sync).get_columns(t)} for t in inspect(sync).get_table_names()})
    for table in metadata.sorted_tables:
        assert table.name in actual, table.name
        assert {c.name for c in table.columns} == actual[table.name], table.name


async def test_prd_indexes_exist(engine) -> None:
    async with engine.connect() as conn:
        names = set((await conn.execute(text("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'"))).scalars())
    for index in ("idx_carts_user_id", "idx_carts_status", "idx_carts_expires_at", "idx_carts_device_id",
                  "idx_orders_cart_token", "idx_orders_user_id", "idx_orders_status", "idx_orders_payment_token",
                  "idx_payment_tokens_order_token", "idx_payment_tokens_status", "idx_payment_tokens_expires_at"):
        assert index in names


async def test_audit_log_is_append_only(engine) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("INSERT INTO audit_log (actor, entity_type, entity_id, action) VALUES ('test', 'x', '1', 'probe')"))
    for statement in ("UPDATE audit_log SET action = 'changed'", "DELETE FROM audit_log", "TRUNCATE audit_log"):
        with pytest.raises(DBAPIError, match="append-only"):
            async with engine.begin() as conn:
                await conn.execute(text(statement))
