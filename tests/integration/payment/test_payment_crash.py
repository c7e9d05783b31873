"""`python -m payment_svc` as real processes on a database of their own: killed (SIGKILL) between
the gateway's create and the commit that notes it, the next process's OpenSession of the same
attempt finds the gateway order by its key instead of making a second one, and that process's
relay publishes the session's event to NATS once."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import grpc
import nats
import pytest
from sqlalchemy import select

from checkout.internal.v1 import payment_sessions_pb2_grpc
from common.db import create_engine
from common.events import EventSettings
from common.nats_streams import close_quietly, delete_streams
from common.settings import Settings
from payment_svc.tables import PLUMBING, payment_sessions
from tests.support.payments import api_requests, new_order_token, open_request
from tests.support.processes import ServiceProcess, fault_env, free_port
from tests.support.tokens import new_user
from tests.support.webhooks import eventually

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def namespace(own_settings: Settings) -> AsyncIterator[Settings]:
    """own_settings with a JetStream stream and subject prefix of this test alone."""
    tag = uuid.uuid4().hex[:10]
    settings = own_settings.replace(nats_stream=f"T{tag}", nats_dlq_stream=f"T{tag}_DLQ",
                                    nats_subject_prefix=f"t{tag}.")
    yield settings
    with contextlib.suppress(Exception):
        nc = await nats.connect(settings.nats_url, connect_timeout=2, allow_reconnect=False)
        try:
            await delete_streams(nc.jetstream(timeout=5), EventSettings.from_settings(settings))
        finally:
            await close_quietly(nc)


def payment_process(settings: Settings, emulator, log, port: int, **env: str) -> ServiceProcess:
    return ServiceProcess("payment_svc", {
        "DATABASE_URL": settings.database_url, "NATS_URL": settings.nats_url, "NATS_STREAM": settings.nats_stream,
        "NATS_DLQ_STREAM": settings.nats_dlq_stream, "NATS_SUBJECT_PREFIX": settings.nats_subject_prefix,
        "PAYMENT_GRPC_PORT": str(port), "PAYMENT_METRICS_PORT": "0", "RAZORPAY_BASE_URL": emulator.url,
        "STRIPE_BASE_URL": emulator.url, "PAYMENT_SWEEP_INTERVAL": "0", "PAYMENT_RECONCILE_INTERVAL": "0",
        "OUTBOX_RELAY_POLL_INTERVAL": "0.2", "LOG_LEVEL": "INFO", **env}, log, port)


async def test_killed_between_the_gateway_create_and_its_commit_makes_one_gateway_order(
        namespace, emulator, tmp_path):
    settings = namespace
    emulator.set_faults("razorpay", receipt_idempotent=False)  # as real Razorpay: a second create is a second order
    user, order = new_user(), new_order_token()
    request = open_request(order, user)

    port = free_port()
    # its lease on the attempt runs for its bound (3 s) + 2 s: the survivor's call waits that out
    doomed = payment_process(settings, emulator, tmp_path / "doomed.log", port, PAYMENT_OPEN_SESSION_BOUND="3",
                             **fault_env("payment_after_gateway_create"))
    await asyncio.to_thread(doomed.wait_serving)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError):
            await payment_sessions_pb2_grpc.PaymentSessionsStub(channel).OpenSession(request, timeout=20)
    assert await asyncio.to_thread(doomed.wait_killed) == -9
    created = emulator.state()["razorpay"]["orders"]
    assert [o["receipt"] for o in created] == [f"{order}:1"]  # the gateway has it; we never noted it

    engine = create_engine(settings, "payment", pool_size=1)
    try:
        async with engine.connect() as conn:
            [row] = (await conn.execute(select(payment_sessions).where(payment_sessions.c.order_token == order))).all()
        assert (row.status, row.gateway_order_id) == ("pending", None) and row.leased_until is not None

        port = free_port()
        survivor = payment_process(settings, emulator, tmp_path / "survivor.log", port)
        try:
            await asyncio.to_thread(survivor.wait_serving)
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                session = await payment_sessions_pb2_grpc.PaymentSessionsStub(channel).OpenSession(request, timeout=20)
            assert session.gateway_order_id == created[0]["id"] and session.payment_token == str(row.token)
            assert [o["id"] for o in emulator.state()["razorpay"]["orders"]] == [created[0]["id"]]
            assert len(api_requests(emulator, "POST", "/v1/orders")) == 1
            assert api_requests(emulator, "GET", "/v1/orders"), "the retry looked the order up by its key"

            # the survivor's relay publishes the session's one event
            outbox = PLUMBING.outbox

            async def published() -> list[str]:
                async with engine.connect() as conn:
                    rows = (await conn.execute(select(outbox.c.subject, outbox.c.published_at)
                                               .where(outbox.c.aggregate_id == order))).all()
                return [r.subject for r in rows] if rows and all(r.published_at for r in rows) else []

            assert await eventually(published, timeout=20, what="the relay") == ["checkout.payment.session_opened"]
            events = EventSettings.from_settings(settings)
            nc = await nats.connect(settings.nats_url, connect_timeout=2, allow_reconnect=False)
            try:
                js = nc.jetstream(timeout=5)
                info = await js.stream_info(events.stream)
                assert info.state.messages == 1
                message = await js.get_msg(events.stream, info.state.last_seq)
                assert message.subject == events.wire_subject("checkout.payment.session_opened")
            finally:
                await close_quietly(nc)
        finally:
            survivor.stop()
    finally:
        await engine.dispose()
