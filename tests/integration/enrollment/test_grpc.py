"""EnrollmentService over real gRPC: a caller's own enrollments, and the admin's dead letters."""

from __future__ import annotations

import datetime
import json
import uuid

import grpc
import pytest
from sqlalchemy import select, update

from checkout.v1 import enrollment_pb2, enrollment_pb2_grpc
from common.clock import parse_rfc3339
from common.grpc_errors import detail_of
from common.tables import dead_letters as dead_letter_table
from common.tables import orders
from enrollment_svc import dead_letters
from enrollment_svc.app import build_registration
from enrollment_svc.domain.captured import parse_captured
from enrollment_svc.fulfil import fulfil_captured
from tests.support.event_bus import captured_payload, enrollments_of, make_order, order_row
from tests.support.grpc_servers import serving
from tests.support.tokens import bearer, new_user

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def stub(settings, engine):
    async with serving(settings, build_registration(engine, settings)) as channel:
        yield enrollment_pb2_grpc.EnrollmentServiceStub(channel)


async def fails_with(call, code: int):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    detail = detail_of(caught.value)
    assert detail is not None and detail.code == code, (caught.value, detail)
    return detail


async def enroll(engine, order) -> str:
    event = parse_captured(json.dumps(captured_payload(order)).encode())
    async with engine.begin() as conn:
        return (await fulfil_captured(conn, event, datetime.datetime.now(datetime.UTC))).enrollment_id


async def park_payload(engine, payload: bytes, error: str = "test") -> str:
    seq = uuid.uuid4().int % 2**62
    stream = f"GRPC{uuid.uuid4().hex[:8]}"
    assert await dead_letters.park(engine, stream=stream, consumer="enrollment", stream_seq=seq,
                                   subject="checkout.payment.captured", payload=payload, deliveries=5, error=error)
    async with engine.connect() as conn:
        return (await conn.execute(select(dead_letter_table.c.dead_letter_id)
                              .where(dead_letter_table.c.stream == stream))).scalar_one()


async def test_list_enrollments_needs_a_bearer_and_shows_only_the_callers(stub, settings, engine):
    await fails_with(stub.ListEnrollments(enrollment_pb2.ListEnrollmentsRequest()), 1101)
    user = new_user()
    mine = [await make_order(engine, months=m, user_id=user) for m in (1, 6)]
    theirs = await make_order(engine, months=3)
    ids = [await enroll(engine, order) for order in (*mine, theirs)]

    reply = await stub.ListEnrollments(enrollment_pb2.ListEnrollmentsRequest(), metadata=bearer(settings, user))
    assert [e.enrollment_id for e in reply.enrollments] == ids[:2]
    first = reply.enrollments[0]
    assert (first.order_token, first.user_id, first.status, first.plan_id) == (
        mine[0].order_token, user, "active", mine[0].plan_id)
    starts, ends = parse_rfc3339(first.starts_at), parse_rfc3339(first.ends_at)
    assert first.starts_at.endswith("Z") and 28 <= (ends - starts).days <= 31

    nobody = await stub.ListEnrollments(enrollment_pb2.ListEnrollmentsRequest(), metadata=bearer(settings, new_user()))
    assert list(nobody.enrollments) == []


async def test_dead_letter_rpcs_are_admin_only(stub, settings):
    for call in (lambda md: stub.ListDeadLetters(enrollment_pb2.ListDeadLettersRequest(), metadata=md),
                 lambda md: stub.ReplayDeadLetter(enrollment_pb2.ReplayDeadLetterRequest(dead_letter_id=str(uuid.uuid4())),
                                                  metadata=md)):
        await fails_with(call(()), 1101)
        await fails_with(call(bearer(settings, new_user(), ["student"])), 1102)


async def test_list_and_replay_dead_letters(stub, settings, engine):
    admin = bearer(settings, new_user(), ["admin"])
    order = await make_order(engine, status="awaiting_payment")
    letter_id = await park_payload(engine, json.dumps(captured_payload(order)).encode(), "order is awaiting_payment")
    broken_id = await park_payload(engine, b"\xffnot json", "unparsable")

    listed = await stub.ListDeadLetters(enrollment_pb2.ListDeadLettersRequest(), metadata=admin)
    by_id = {d.dead_letter_id: d for d in listed.dead_letters}
    assert by_id[letter_id].status == "parked" and by_id[letter_id].deliveries == 5
    assert json.loads(by_id[letter_id].payload)["order_token"] == order.order_token
    assert by_id[broken_id].payload.endswith("not json")

    replay = stub.ReplayDeadLetter
    await fails_with(replay(enrollment_pb2.ReplayDeadLetterRequest(dead_letter_id="nope"), metadata=admin), 1000)
    await fails_with(replay(enrollment_pb2.ReplayDeadLetterRequest(dead_letter_id=str(uuid.uuid4())), metadata=admin), 3201)
    await fails_with(replay(enrollment_pb2.ReplayDeadLetterRequest(dead_letter_id=broken_id), metadata=admin), 1000)
    detail = await fails_with(replay(enrollment_pb2.ReplayDeadLetterRequest(dead_letter_id=letter_id), metadata=admin), 2102)
    assert "not paid" in detail.message

    async with engine.begin() as conn:  # fixed by an operator
        await conn.execute(update(orders).where(orders.c.order_token == order.order_token).values(status="paid"))
    done = await replay(enrollment_pb2.ReplayDeadLetterRequest(dead_letter_id=letter_id), metadata=admin)
    assert done.status == "replayed" and done.dead_letter_id == letter_id
    [enrollment] = await enrollments_of(engine, order.order_token)
    row = await order_row(engine, order.order_token)
    assert row.status == "fulfilled" and row.enrollment_id == enrollment.enrollment_id
    again = await replay(enrollment_pb2.ReplayDeadLetterRequest(dead_letter_id=letter_id), metadata=admin)
    assert again.status == "replayed" and len(await enrollments_of(engine, order.order_token)) == 1
