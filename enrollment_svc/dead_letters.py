"""Messages the consumer gave up on: parked in `dead_letters`, listed and replayed by an admin.

A replay runs the consumer's own handler (fulfil_captured) in-process on the stored payload, in
the same transaction that marks the dead letter replayed; replaying a replayed one changes nothing.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncEngine

from common.audit import append_audit
from common.clock import utc_now
from common.errors import CheckoutError, ErrorCode
from enrollment_svc import repository
from enrollment_svc.domain.captured import InvalidEvent, parse_captured
from enrollment_svc.fulfil import CannotFulfil, RetryLater, fulfil_captured


async def park(engine: AsyncEngine, *, stream: str, consumer: str, stream_seq: int, subject: str, payload: bytes,
               deliveries: int, error: str) -> bool:
    """True if this call parked it; False if that stream message was parked before."""
    async with engine.begin() as conn:
        return await repository.park(
            conn, dead_letter_id=str(uuid.uuid4()), stream=stream, consumer=consumer, stream_seq=stream_seq,
            subject=subject, payload=payload, deliveries=deliveries, error=error[:4000],
        )


async def replay(engine: AsyncEngine, dead_letter_id: str, *, actor: str) -> repository.DeadLetterRecord:
    try:
        dead_letter_id = str(uuid.UUID(dead_letter_id))
    except ValueError:
        raise CheckoutError(ErrorCode.VALIDATION_FAILED, validation_messages=["dead_letter_id: must be a UUID"]) from None
    failure: str | None = None
    async with engine.begin() as conn:
        letter = await repository.get_dead_letter(conn, dead_letter_id, for_update=True)
        if letter is None:
            raise CheckoutError(ErrorCode.DEAD_LETTER_NOT_FOUND,
                                suggested_action="list the dead letters for their ids")
        if letter.status == "replayed":
            return letter
        try:
            event = parse_captured(letter.payload)
        except InvalidEvent as error:
            raise CheckoutError(ErrorCode.VALIDATION_FAILED, f"the parked message cannot be handled: {error}",
                                suggested_action="publish a corrected event; this one cannot be replayed") from None
        try:
            async with conn.begin_nested():
                outcome = await fulfil_captured(conn, event, utc_now(), actor=actor)
        except (RetryLater, CannotFulfil) as error:
            failure = f"replay by {actor}: {error}"
        else:
            await repository.mark_replayed(conn, dead_letter_id, utc_now())
            await append_audit(conn, actor=actor, entity_type="dead_letter", entity_id=dead_letter_id, action="replayed",
                               before={"status": letter.status},
                               after={"status": "replayed", "enrollment_id": outcome.enrollment_id,
                                      "enrollment_created": outcome.created})
        if failure is not None:
            await repository.note_error(conn, dead_letter_id, failure)
    if failure is not None:
        raise CheckoutError(ErrorCode.ORDER_NOT_PAYABLE, failure,
                            suggested_action="fix the order (it must be paid), then replay again")
    async with engine.connect() as conn:
        replayed = await repository.get_dead_letter(conn, dead_letter_id)
    assert replayed is not None
    return replayed
