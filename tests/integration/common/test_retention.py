"""Retention on real PostgreSQL: what is past its window goes, in batches, and nothing else; only
one process prunes a schema at a time."""

from __future__ import annotations

import uuid

from sqlalchemy import text

from common.db import create_engine
from common.retention import Pruner, lock_key, plumbing_tasks
from payment_svc.retention import webhook_body_task

OLD, RECENT = "now() - interval '3 days'", "now() - interval '1 hour'"


async def _outbox(conn, published_at: str | None) -> str:
    row_id = str(uuid.uuid4())
    await conn.execute(text(f"INSERT INTO payment.outbox (id, aggregate_id, subject, payload, published_at) "
                            f"VALUES (:id, 'a', 'checkout.test', '{{}}', {published_at or 'NULL'})"), {"id": row_id})
    return row_id


async def _dead_letter(conn, status: str, replayed_at: str | None) -> str:
    letter = str(uuid.uuid4())
    await conn.execute(text(f"INSERT INTO payment.dead_letters (dead_letter_id, stream, consumer, stream_seq, subject, "
                            f"payload, deliveries, status, replayed_at) VALUES (:id, 's', 'c', :seq, 'x', '\\x00', 1, "
                            f":status, {replayed_at or 'NULL'})"), {"id": letter, "status": status, "seq": uuid.uuid4().int % 2**62})
    return letter


async def _webhook(conn, status: str, processed_at: str | None) -> str:
    event = f"evt_{uuid.uuid4().hex}"
    await conn.execute(text(f"INSERT INTO payment.webhook_events (gateway, event_id, event_type, body, status, "
                            f"processed_at) VALUES ('razorpay', :id, 'payment.captured', '\\x7b7d', :status, "
                            f"{processed_at or 'NULL'})"), {"id": event, "status": status})
    return event


async def test_a_pass_prunes_what_is_past_its_window_in_batches_and_nothing_else(own_settings) -> None:
    settings = own_settings.replace(retention_outbox_days=2, retention_dead_letter_days=2,
                                    retention_webhook_body_days=2)
    engine = create_engine(settings, "payment", pool_size=2)
    try:
        async with engine.begin() as conn:
            old_published = [await _outbox(conn, OLD) for _ in range(5)]
            kept_outbox = {await _outbox(conn, RECENT), await _outbox(conn, None)}
            old_replayed = await _dead_letter(conn, "replayed", OLD)
            kept_letters = {await _dead_letter(conn, "replayed", RECENT), await _dead_letter(conn, "parked", None)}
            trimmed = {await _webhook(conn, "processed", OLD), await _webhook(conn, "ignored", OLD)}
            whole = {await _webhook(conn, "processed", RECENT), await _webhook(conn, "failed", OLD),
                     await _webhook(conn, "received", None)}
        pruner = Pruner(engine, "payment", [*plumbing_tasks("payment", settings), webhook_body_task(settings)], batch=2)

        assert await pruner.one_pass() == {"outbox": 5, "dead_letters": 1, "webhook_bodies": 2}

        async with engine.connect() as conn:
            outbox_ids = set((await conn.execute(text("SELECT id::text FROM payment.outbox"))).scalars())
            letters = set((await conn.execute(text("SELECT dead_letter_id::text FROM payment.dead_letters"))).scalars())
            bodies = dict((await conn.execute(text(
                "SELECT event_id, octet_length(body) FROM payment.webhook_events"))).all())
        assert outbox_ids == kept_outbox and not outbox_ids & set(old_published)
        assert letters == kept_letters and old_replayed not in letters
        assert {event: bodies[event] for event in trimmed} == dict.fromkeys(trimmed, 0)  # rows kept, bodies gone
        assert {event: bodies[event] for event in whole} == dict.fromkeys(whole, 2)
        assert await pruner.one_pass() == {"outbox": 0, "dead_letters": 0, "webhook_bodies": 0}
    finally:
        await engine.dispose()


async def test_a_pass_skips_while_another_process_prunes_the_schema(own_settings) -> None:
    engine = create_engine(own_settings, "payment", pool_size=2)
    try:
        async with engine.begin() as conn:
            old = await _outbox(conn, "now() - interval '30 days'")
        pruner = Pruner(engine, "payment", plumbing_tasks("payment", own_settings))
        async with engine.connect() as other:
            async with other.begin():
                await other.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": lock_key("payment")})
                assert await pruner.one_pass() is None
        assert await pruner.one_pass() == {"outbox": 1, "dead_letters": 0}
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT count(*) FROM payment.outbox WHERE id = :id"),
                                       {"id": old})).scalar_one() == 0
    finally:
        await engine.dispose()


async def test_every_service_connection_has_the_statement_timeout(own_settings) -> None:
    engine = create_engine(own_settings.replace(db_statement_timeout_ms=1234), "order", pool_size=1)
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text("SHOW statement_timeout"))).scalar_one() == "1234ms"
    finally:
        await engine.dispose()
