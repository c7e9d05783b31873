"""payment_svc's database role (checkout_payment) can use its own schema `payment` and nothing
else: not order_svc's `ordering` (not even to read), nor `cart` or `enrollment`."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError

OTHERS = [("ordering", "orders"), ("ordering", "outbox"), ("cart", "carts"), ("cart", "coupon_redemptions"),
          ("enrollment", "enrollments")]


@pytest.mark.parametrize(("schema", "table"), OTHERS)
async def test_the_payment_role_cannot_read_another_services_tables(engine, admin_engine, schema, table):
    async with admin_engine.connect() as conn:  # the table is there: the refusal is about the role
        assert (await conn.execute(text(f"SELECT to_regclass('{schema}.{table}') IS NOT NULL"))).scalar_one()
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT current_user"))).scalar_one() == "checkout_payment"
        with pytest.raises(ProgrammingError) as refused:
            await conn.execute(text(f"SELECT count(*) FROM {schema}.{table}"))
    assert "permission denied" in str(refused.value)


async def test_the_payment_role_cannot_write_ordering(engine):
    async with engine.connect() as conn:
        with pytest.raises(ProgrammingError) as refused:
            await conn.execute(text("UPDATE ordering.orders SET status = 'paid'"))
    assert "permission denied" in str(refused.value)


async def test_the_payment_role_uses_its_own_schema(engine):
    async with engine.connect() as conn:
        assert (await conn.execute(text("SELECT current_schema()"))).scalar_one() == "payment"
        assert (await conn.execute(text("SELECT count(*) >= 0 FROM payment.payment_sessions"))).scalar_one()
        assert (await conn.execute(text("SELECT has_schema_privilege('ordering', 'USAGE')"))).scalar_one() is False
