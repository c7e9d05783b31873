"""The unit of work on real PostgreSQL, in each service's own schema and as its own role: the events
and audit rows of a transaction are written in it (one statement for both), with the request's
correlation id, and a transaction that does not commit leaves neither."""

from __future__ import annotations

import contextlib
import dataclasses
import decimal
import re
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy import MetaData, event, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from checkout.events.v1 import events_pb2
from common.db import create_engine
from common.plumbing import Plumbing, plumbing_tables
from common.request_context import correlation_id_var
from common.settings import SCHEMAS, Settings
from common.uow import UnitOfWork, one_statement, reading, uow_factory

pytestmark = pytest.mark.timeout(60)

SERVICES = ("cart", "order", "payment", "enrollment")


@pytest.fixture(scope="module")
async def engines(settings: Settings) -> AsyncIterator[dict[str, AsyncEngine]]:
    """One engine per service, each connected as the service's own role."""
    made = {name: create_engine(settings, name, pool_size=2) for name in SERVICES}
    yield made
    for engine in made.values():
        await engine.dispose()


@pytest.fixture(params=SERVICES)
def service(request: pytest.FixtureRequest, engines: dict[str, AsyncEngine]) -> tuple[AsyncEngine, Plumbing]:
    """(the service's engine; its schema's plumbing tables)."""
    return engines[request.param], plumbing_tables(MetaData(), SCHEMAS[request.param])


@contextlib.contextmanager
def statements(engine: AsyncEngine) -> Iterator[list[str]]:
    """The SQL statements `engine` sends while the block runs."""
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany) -> None:
        seen.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


async def outbox_rows(engine: AsyncEngine, plumbing: Plumbing, aggregate_id: str) -> list:
    async with engine.connect() as conn:
        return list((await conn.execute(select(plumbing.outbox).where(plumbing.outbox.c.aggregate_id == aggregate_id)
                                        .order_by(plumbing.outbox.c.seq))).all())


async def audit_rows(engine: AsyncEngine, plumbing: Plumbing, entity_id: str) -> list:
    async with engine.connect() as conn:
        return list((await conn.execute(select(plumbing.audit_log).where(plumbing.audit_log.c.entity_id == entity_id)
                                        .order_by(plumbing.audit_log.c.id))).all())


def record_change(uow: UnitOfWork, token: str, n: int = 0) -> None:
    uow.publish("checkout.test.changed", token, {"token": token, "n": n, "amount": decimal.Decimal("10.50")})
    uow.audit(actor="test", entity_type="thing", entity_id=token, action=f"step:{n}", before={"n": n - 1},
              after={"n": n, "amount": decimal.Decimal("10.50")})


async def test_a_commit_writes_its_events_and_audit_rows_in_the_services_schema(service):
    engine, plumbing = service
    token = str(uuid.uuid4())
    cid = correlation_id_var.set(f"corr-{token}")
    try:
        async with uow_factory(engine, plumbing)() as uow:
            record_change(uow, token)
            await uow.commit()
    finally:
        correlation_id_var.reset(cid)
    assert uow.committed and uow.events == [] and uow.audits == []
    [row] = await outbox_rows(engine, plumbing, token)
    headers = dict(row.headers)
    # with tracing set up in this process (another test may have), the unit of work's span rides along
    traceparent = headers.pop("traceparent", None)
    assert traceparent is None or re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-0[0-3]", traceparent), traceparent
    assert (row.subject, row.payload, headers) == (
        "checkout.test.changed", {"token": token, "n": 0, "amount": "10.50"}, {"correlation_id": f"corr-{token}"})
    assert row.published_at is None and row.seq is not None and row.created_at is not None
    [audit] = await audit_rows(engine, plumbing, token)
    assert (audit.actor, audit.entity_type, audit.action, audit.before, audit.after, audit.flagged) == (
        "test", "thing", "step:0", {"n": -1}, {"n": 0, "amount": "10.50"}, False)
    assert audit.correlation_id == f"corr-{token}"


async def test_events_and_audit_rows_go_with_the_change_or_not_at_all(service):
    engine, plumbing = service
    token = str(uuid.uuid4())
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TEMP TABLE IF NOT EXISTS uow_things (token text PRIMARY KEY)"))

    async with UnitOfWork(engine, plumbing) as uow:  # left without commit
        await uow.conn.execute(text("INSERT INTO uow_things VALUES (:t)"), {"t": token})
        record_change(uow, token)
        await uow.flush()  # written inside the transaction…
        assert len(await outbox_rows(engine, plumbing, token)) == 0  # …invisible to others until commit
    assert not uow.committed

    with pytest.raises(RuntimeError, match="boom"):
        async with UnitOfWork(engine, plumbing) as uow:  # an error before the commit
            record_change(uow, token, 1)
            await uow.flush()
            raise RuntimeError("boom")

    async with UnitOfWork(engine, plumbing) as uow:  # a commit that fails rolls back the lot
        record_change(uow, token, 2)
        uow.events.append(dataclasses.replace(uow.events[0], payload={}))  # the same outbox id twice
        with pytest.raises(Exception, match="duplicate key|UniqueViolation"):
            await uow.commit()
    assert not uow.committed

    assert await outbox_rows(engine, plumbing, token) == []
    assert await audit_rows(engine, plumbing, token) == []


async def test_the_rows_of_a_commit_are_one_statement(service):
    engine, plumbing = service
    token = str(uuid.uuid4())
    with statements(engine) as sent:
        async with UnitOfWork(engine, plumbing) as uow:
            for n in range(7):
                record_change(uow, token, n)
            ids = [e.id for e in uow.events]
            driver = (await uow.conn.get_raw_connection()).driver_connection
            await uow.commit()  # sent with the COMMIT, in pipeline mode
            assert driver._pipeline is None and driver.info.transaction_status.name == "IDLE"
    writes = [s for s in sent if "INSERT" in s.upper()]
    assert len(writes) == 1, writes
    assert f'"{plumbing.schema}".outbox' in writes[0] and f'"{plumbing.schema}".audit_log' in writes[0], writes
    rows = await outbox_rows(engine, plumbing, token)
    assert [row.payload["n"] for row in rows] == list(range(7))  # in the order recorded
    assert [row.id for row in rows] == ids
    assert [a.action for a in await audit_rows(engine, plumbing, token)] == [f"step:{n}" for n in range(7)]


async def test_events_alone_or_audit_rows_alone_are_one_insert_into_their_table(service):
    engine, plumbing = service
    token = str(uuid.uuid4())
    with statements(engine) as sent:
        async with UnitOfWork(engine, plumbing) as uow:
            uow.publish("checkout.test.changed", token, {"token": token})
            await uow.commit()
        async with UnitOfWork(engine, plumbing) as uow:
            uow.audit(actor="test", entity_type="thing", entity_id=token, action="looked", before=None, after=None)
            await uow.commit()
    writes = [s for s in sent if "INSERT" in s.upper()]
    assert len(writes) == 2, writes
    assert "outbox" in writes[0] and "audit_log" not in writes[0], writes
    assert "audit_log" in writes[1] and "outbox" not in writes[1], writes
    assert [row.subject for row in await outbox_rows(engine, plumbing, token)] == ["checkout.test.changed"]
    [audit] = await audit_rows(engine, plumbing, token)
    assert (audit.action, audit.before, audit.after) == ("looked", None, None)


async def test_a_read_only_unit_of_work_sends_no_begin_and_records_nothing(service):
    engine, plumbing = service
    token = str(uuid.uuid4())
    with statements(engine) as sent:
        async with reading(uow_factory(engine, plumbing)) as uow:
            assert (await uow.conn.execute(text("SELECT 1"))).scalar() == 1
            driver = (await uow.conn.get_raw_connection()).driver_connection
            assert driver.autocommit is True
    assert sent == ["SELECT 1"]
    assert driver.autocommit is False  # back in the pool, the connection opens transactions again
    async with reading(uow_factory(engine, plumbing)) as uow:
        record_change(uow, token)
        with pytest.raises(RuntimeError, match="read-only"):
            await uow.commit()
    assert await outbox_rows(engine, plumbing, token) == []


async def test_a_one_statement_unit_of_work_changes_without_begin_or_commit(service):
    engine, plumbing = service
    token = str(uuid.uuid4())
    async with one_statement(uow_factory(engine, plumbing)) as uow:
        await uow.conn.execute(plumbing.audit_log.insert().values(
            actor="test", correlation_id="", entity_type="thing", entity_id=token, action="upserted"))
        driver = (await uow.conn.get_raw_connection()).driver_connection
        assert driver.autocommit is True
        assert [row.action for row in await audit_rows(engine, plumbing, token)] == ["upserted"]  # before commit()
        await uow.commit()
    async with one_statement(uow_factory(engine, plumbing)) as uow:
        record_change(uow, token)
        with pytest.raises(RuntimeError, match="read-only"):
            await uow.commit()
    assert await outbox_rows(engine, plumbing, token) == []


async def test_a_proto_payload_is_stored_with_proto_names_and_zero_values(order_engine):
    plumbing = plumbing_tables(MetaData(), "ordering")
    token = str(uuid.uuid4())
    async with UnitOfWork(order_engine, plumbing) as uow:
        uow.publish("checkout.order.paid", token, events_pb2.OrderEvent(order_token=token, status="paid",
                                                                        total="1499.00"))
        await uow.commit()
    [row] = await outbox_rows(order_engine, plumbing, token)
    assert row.payload["order_token"] == token and row.payload["total"] == "1499.00"
    assert row.payload["payment_token"] == "" and row.payload["lines"] == []  # zero values printed


async def test_misuse_is_refused_before_anything_is_written(order_engine):
    plumbing = plumbing_tables(MetaData(), "ordering")
    uow = UnitOfWork(order_engine, plumbing)
    with pytest.raises(RuntimeError, match="not open"):
        _ = uow.conn
    with pytest.raises(ValueError, match="must start with 'checkout.'"):
        uow.publish("orders.paid", "x", {})
    with pytest.raises(TypeError, match="cannot store"):
        uow.audit(actor="t", entity_type="t", entity_id="t", action="t", before=None, after={"f": 1.5j})
