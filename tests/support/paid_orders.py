"""Paid orders as enrollment_svc hears of them (`checkout.order.paid`, an OrderEvent with lines),
published the way order_svc would: through a unit of work on the `ordering` schema's outbox and that
schema's relay, or straight onto the test's stream with a Nats-Msg-Id. Also what enrollment_svc
wrote: enrollments, audit rows, outbox rows, dead letters; and a database refusal for one order."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import uuid
from collections.abc import AsyncIterator, Iterable
from typing import Any

from sqlalchemy import MetaData, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from checkout.events.v1 import events_pb2
from checkout.internal.v1 import cart_checkout_pb2
from checkout.v1 import common_pb2
from common.events import CORRELATION_HEADER, MSG_ID_HEADER
from common.nats_streams import ensure_streams
from common.outbox_relay import relay_worker
from common.plumbing import plumbing_tables
from common.settings import Settings
from common.uow import UnitOfWork, event_payload
from common.workers import Worker
from enrollment_svc import app, workers
from enrollment_svc.tables import enrollments, plumbing
from tests.support.event_bus import events_of, jetstream, running

ORDER_PAID = "checkout.order.paid"
ORDERING = plumbing_tables(MetaData(), "ordering")  # the fake producer's outbox: order_svc's schema

BACKEND = "5b7f6a2e-1c1d-4c3a-9f55-0d0c1a000001"
PLANS = {  # sample catalog (cart_svc.seed): months → plan id, all of the backend internship
    1: "7a1e0000-0000-4000-8000-000000000101",
    3: "7a1e0000-0000-4000-8000-000000000103",
    6: "7a1e0000-0000-4000-8000-000000000106",
}


@dataclasses.dataclass(frozen=True)
class Line:
    plan_id: str
    value: int
    unit: str = "month"


@dataclasses.dataclass(frozen=True)
class PaidOrder:
    order_token: str
    user_id: str
    lines: tuple[Line, ...]  # line n is lines[n-1]

    @property
    def plans(self) -> list[str]:
        return [line.plan_id for line in self.lines]


def paid_order(*months: int, user_id: str | None = None, lines: Iterable[Line] = ()) -> PaidOrder:
    """One line per entry of `months` (a sample plan of that many months), or the `lines` given."""
    chosen = tuple(lines) or tuple(Line(PLANS[m], m) for m in months or (1,))
    return PaidOrder(str(uuid.uuid4()), user_id or str(uuid.uuid4()), chosen)


def order_paid_event(order: PaidOrder, **fields: Any) -> events_pb2.OrderEvent:
    lines = [cart_checkout_pb2.OrderLine(
        line_no=n, internship_id=BACKEND, plan_id=line.plan_id, title="Backend",
        period=common_pb2.Period(value=line.value, unit=line.unit), quantity=1,
        unit_price="1499.00", unit_price_inr="1499.00", line_total="1499.00")
        for n, line in enumerate(order.lines, start=1)]
    return events_pb2.OrderEvent(order_token=order.order_token, user_id=order.user_id, cart_token=str(uuid.uuid4()),
                                 status="paid", previous="awaiting_payment", currency="INR",
                                 total=f"{1499 * len(lines)}.00", payment_token=str(uuid.uuid4()), lines=lines,
                                 occurred_at="2026-12-02T10:00:00Z", **fields)


def order_paid_json(order: PaidOrder, **fields: Any) -> bytes:
    return json.dumps(event_payload(order_paid_event(order, **fields))).encode()


# -- publishing ------------------------------------------------------------------------------------
async def publish(settings: Settings, data: bytes, *, msg_id: str | None = None, correlation: str = "",
                  subject: str = ORDER_PAID) -> None:
    """Straight onto the test's stream, as a relay would (Nats-Msg-Id: a repeat is dropped)."""
    events = events_of(settings)
    async with jetstream(settings.nats_url) as js:
        await ensure_streams(js, events)
        headers = {MSG_ID_HEADER: msg_id or str(uuid.uuid4())}
        if correlation:
            headers[CORRELATION_HEADER] = correlation
        await js.publish(events.wire_subject(subject), data, headers=headers)


async def write_paid(order_engine: AsyncEngine, order: PaidOrder) -> str:
    """The outbox row order_svc writes in the transaction that makes the order paid; its id."""
    async with UnitOfWork(order_engine, ORDERING) as uow:
        event = uow.publish(ORDER_PAID, order.order_token, order_paid_event(order))
        await uow.commit()
    return event.id


def order_relay(settings: Settings) -> Worker:
    """The relay of the `ordering` outbox (order_svc's own, run here for the fake producer)."""
    return relay_worker(settings, "order", ORDERING)


# -- enrollment_svc in this process -----------------------------------------------------------------
@contextlib.asynccontextmanager
async def consuming(engine: AsyncEngine, settings: Settings) -> AsyncIterator[app.Parts]:
    """enrollment_svc's parts, with its consumer running in this process for the block."""
    parts = app.parts(engine)
    worker, consumer = workers.consumer(engine, settings, parts.subscriptions)
    async with running(worker):
        await asyncio.wait_for(consumer.ready.wait(), timeout=10)
        yield parts


# -- what enrollment_svc wrote ---------------------------------------------------------------------
async def enrollments_of(engine: AsyncEngine, order_token: str) -> list[Any]:
    async with engine.connect() as conn:
        return list((await conn.execute(select(enrollments).where(enrollments.c.order_token == order_token)
                                        .order_by(enrollments.c.line_no))).all())


async def enrolled_orders(engine: AsyncEngine, orders: Iterable[PaidOrder]) -> list[PaidOrder]:
    return [order for order in orders if await enrollments_of(engine, order.order_token)]


async def assert_one_enrollment_per_line(engine: AsyncEngine, order: PaidOrder) -> list[Any]:
    rows = await enrollments_of(engine, order.order_token)
    assert [(r.line_no, r.plan_id, r.user_id, r.status) for r in rows] == [
        (n, plan, order.user_id, "active") for n, plan in enumerate(order.plans, start=1)], rows
    return rows


async def audits_of(engine: AsyncEngine, entity_ids: Iterable[str]) -> list[Any]:
    audit_log = plumbing.audit_log
    async with engine.connect() as conn:
        return list((await conn.execute(select(audit_log).where(audit_log.c.entity_id.in_(list(entity_ids)))
                                        .order_by(audit_log.c.id))).all())


async def created_events(engine: AsyncEngine, order_token: str) -> list[Any]:
    """enrollment_svc's outbox rows `checkout.enrollment.created` of the order."""
    outbox = plumbing.outbox
    async with engine.connect() as conn:
        return list((await conn.execute(select(outbox).where(outbox.c.aggregate_id == order_token,
                                                             outbox.c.subject == "checkout.enrollment.created"))).all())


async def dead_letters_of(engine: AsyncEngine, settings: Settings) -> list[Any]:
    table = plumbing.dead_letters
    async with engine.connect() as conn:
        return list((await conn.execute(select(table).where(table.c.stream == settings.nats_stream)
                                        .order_by(table.c.stream_seq))).all())


@contextlib.asynccontextmanager
async def database_refuses(admin_engine: AsyncEngine, order: PaidOrder) -> AsyncIterator[str]:
    """Until the block ends, PostgreSQL refuses every enrollment of `order` (a trigger: a failure of
    the database itself, not of the code under test); yields the error text it raises."""
    name = f"refuse_{uuid.uuid4().hex[:12]}"
    message = f"test refuses enrollments of {order.order_token}"
    async with admin_engine.begin() as conn:
        await conn.execute(text(f"""
            CREATE FUNCTION enrollment.{name}() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.order_token = '{order.order_token}' THEN RAISE EXCEPTION '{message}'; END IF;
                RETURN NEW;
            END $$"""))
        await conn.execute(text(f"CREATE TRIGGER {name} BEFORE INSERT ON enrollment.enrollments "
                                f"FOR EACH ROW EXECUTE FUNCTION enrollment.{name}()"))
    try:
        yield message
    finally:
        async with admin_engine.begin() as conn:
            await conn.execute(text(f"DROP TRIGGER IF EXISTS {name} ON enrollment.enrollments"))
            await conn.execute(text(f"DROP FUNCTION IF EXISTS enrollment.{name}()"))
