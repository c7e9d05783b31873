"""The plumbing end to end on real PostgreSQL and NATS: a unit of work writes an event and an
audit row in its transaction, the schema's relay publishes the event, a consumer handles it once. The test's streams are deleted at the end."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import MetaData, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from common.consumed import ConsumedEvent
from common.consumer import EventConsumer, Subscription
from common.dead_letters import DeadLetterStore
from common.events import EventSettings
from common.outbox_relay import OutboxRelay
from common.plumbing import plumbing_tables
from common.settings import Settings
from common.uow import UnitOfWork
from common.workers import Worker
from tests.support.jetstream import drop_streams


async def test_an_event_written_by_a_unit_of_work_reaches_a_consumer_once(
        settings: Settings, enrollment_engine: AsyncEngine) -> None:
    plumbing = plumbing_tables(MetaData(), "enrollment")
    namespace = uuid.uuid4().hex[:10]
    events = EventSettings(stream=f"T{namespace}", dlq_stream=f"T{namespace}_DLQ", subject_prefix=f"t{namespace}.",
                           relay_poll_interval=0.2)
    token = str(uuid.uuid4())
    async with UnitOfWork(enrollment_engine, plumbing) as uow:
        uow.publish("checkout.test.happened", token, {"token": token, "amount": "1.00"})
        uow.audit(actor="test", entity_type="test", entity_id=token, action="happened", before=None, after={"x": 1})
        await uow.commit()
    async with enrollment_engine.connect() as conn:
        audits = (await conn.execute(select(func.count()).select_from(plumbing.audit_log)
                                     .where(plumbing.audit_log.c.entity_id == token))).scalar_one()
    assert audits == 1

    received: list[ConsumedEvent] = []
    done = asyncio.Event()

    async def handle(event: ConsumedEvent) -> None:
        if event.payload.get("token") == token:
            received.append(event)
            done.set()

    relay = OutboxRelay(settings.enrollment_database_url, plumbing, settings.nats_url, events)
    consumer = EventConsumer(DeadLetterStore(enrollment_engine, plumbing), settings.nats_url, events,
                             [Subscription(f"smoke{namespace}", ("checkout.test.happened",), handle)], name="smoke")
    workers = [Worker("relay", relay.run).start(), Worker("consumer", consumer.run).start()]
    try:
        await asyncio.wait_for(done.wait(), timeout=30)
    finally:
        for worker in workers:
            await worker.stop()
        await drop_streams(settings.nats_url, events)
    assert [(e.subject, dict(e.payload)) for e in received] == [
        ("checkout.test.happened", {"token": token, "amount": "1.00"})]
