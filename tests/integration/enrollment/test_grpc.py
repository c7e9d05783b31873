"""EnrollmentService over real gRPC: a caller's own enrollments, and the admin's dead letters."""

from __future__ import annotations

import json
import uuid

import grpc
import pytest

from checkout.v1 import enrollment_pb2, enrollment_pb2_grpc
from common.clock import parse_rfc3339
from common.consumed import ConsumedEvent
from common.dead_letters import DeadLetterStore
from common.grpc_errors import detail_of
from enrollment_svc import app, workers
from enrollment_svc.tables import plumbing
from tests.support.grpc_servers import serving
from tests.support.paid_orders import (
    assert_one_enrollment_per_line,
    database_refuses,
    enrollments_of,
    order_paid_json,
    paid_order,
)
from tests.support.tokens import bearer, new_user

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def parts(enrollment_engine):
    return app.parts(enrollment_engine)


@pytest.fixture
async def stub(settings, parts):
    async with serving(settings, parts.register) as channel:
        yield enrollment_pb2_grpc.EnrollmentServiceStub(channel)


async def fails_with(call, code: int):
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    detail = detail_of(caught.value)
    assert detail is not None and detail.code == code, (caught.value, detail)
    return detail


async def enroll(parts, order) -> list[str]:
    enrolled = await parts.on_order_paid(ConsumedEvent("checkout.order.paid", json.loads(order_paid_json(order))))
    return [e.enrollment_id for e in enrolled.enrollments]


async def park_payload(engine, payload: bytes, error: str = "test") -> str:
    store = DeadLetterStore(engine, plumbing)
    stream = f"GRPC{uuid.uuid4().hex[:8]}"
    assert await store.park(stream=stream, consumer=workers.ORDERS_DURABLE, stream_seq=uuid.uuid4().int % 2**62,
                            subject="checkout.order.paid", payload=payload, deliveries=5, error=error)
    [letter] = [d for d in await store.list() if d.stream == stream]
    return letter.dead_letter_id


async def test_list_enrollments_needs_a_bearer_and_shows_only_the_callers(stub, settings, parts):
    await fails_with(stub.ListEnrollments(enrollment_pb2.ListEnrollmentsRequest()), 1101)
    user = new_user()
    mine = [paid_order(1, user_id=user), paid_order(6, 3, user_id=user)]
    theirs = paid_order(3)
    ids = [await enroll(parts, order) for order in (*mine, theirs)]

    reply = await stub.ListEnrollments(enrollment_pb2.ListEnrollmentsRequest(), metadata=bearer(settings, user))
    assert [e.enrollment_id for e in reply.enrollments] == ids[0] + ids[1]
    assert [(e.order_token, e.plan_id) for e in reply.enrollments] == [
        (mine[0].order_token, mine[0].plans[0]), (mine[1].order_token, mine[1].plans[0]),
        (mine[1].order_token, mine[1].plans[1])]
    first = reply.enrollments[0]
    assert (first.order_token, first.user_id, first.status, first.plan_id) == (
        mine[0].order_token, user, "active", mine[0].plans[0])
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


async def test_list_and_replay_dead_letters(stub, settings, enrollment_engine, admin_engine):
    admin = bearer(settings, new_user(), ["admin"])
    order = paid_order(1, 3)
    letter_id = await park_payload(enrollment_engine, order_paid_json(order), "database: refused")
    broken_id = await park_payload(enrollment_engine, b"\xffnot json", "unparsable")

    listed = await stub.ListDeadLetters(enrollment_pb2.ListDeadLettersRequest(), metadata=admin)
    by_id = {d.dead_letter_id: d for d in listed.dead_letters}
    assert by_id[letter_id].status == "parked" and by_id[letter_id].deliveries == 5
    assert by_id[letter_id].subject == "checkout.order.paid" and by_id[letter_id].error == "database: refused"
    assert json.loads(by_id[letter_id].payload)["order_token"] == order.order_token
    assert by_id[broken_id].payload.endswith("not json")

    replay = stub.ReplayDeadLetter
    await fails_with(replay(enrollment_pb2.ReplayDeadLetterRequest(dead_letter_id="nope"), metadata=admin), 1000)
    await fails_with(replay(enrollment_pb2.ReplayDeadLetterRequest(dead_letter_id=str(uuid.uuid4())), metadata=admin), 3201)
    await fails_with(replay(enrollment_pb2.ReplayDeadLetterRequest(dead_letter_id=broken_id), metadata=admin), 1000)
    async with database_refuses(admin_engine, order) as refusal:
        detail = await fails_with(replay(enrollment_pb2.ReplayDeadLetterRequest(dead_letter_id=letter_id),
                                         metadata=admin), 2102)
        assert refusal in detail.message
        still = {d.dead_letter_id: d for d in (await stub.ListDeadLetters(enrollment_pb2.ListDeadLettersRequest(),
                                                                         metadata=admin)).dead_letters}[letter_id]
        assert still.status == "parked" and refusal in still.error  # the new reason is kept on the letter
    assert await enrollments_of(enrollment_engine, order.order_token) == []

    done = await replay(enrollment_pb2.ReplayDeadLetterRequest(dead_letter_id=letter_id), metadata=admin)
    assert done.status == "replayed" and done.dead_letter_id == letter_id
    rows = await assert_one_enrollment_per_line(enrollment_engine, order)
    again = await replay(enrollment_pb2.ReplayDeadLetterRequest(dead_letter_id=letter_id), metadata=admin)
    assert again.status == "replayed"
    assert await enrollments_of(enrollment_engine, order.order_token) == rows
