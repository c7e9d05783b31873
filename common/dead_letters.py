"""Events a service's consumer gave up on, in that service's `dead_letters`: parked by
common/consumer.py, listed and replayed by an admin (RPC or `make replay-dlq`).

A replay runs the consumer's own handler on the stored payload (the handler commits its own unit
of work, and is idempotent), then marks the dead letter replayed with an audit row; replaying a
replayed one changes nothing. A handler that refuses again leaves it parked with the new reason.
"""

from __future__ import annotations

import dataclasses
import datetime
import uuid
from collections.abc import Mapping

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

from common.clock import utc_now
from common.consumed import CannotHandle, Handler, RetryLater, parse_event
from common.errors import CheckoutError, ErrorCode
from common.plumbing import Plumbing
from common.uow import UnitOfWork

MAX_ERROR = 4000


@dataclasses.dataclass(frozen=True)
class DeadLetterRecord:
    dead_letter_id: str
    stream: str
    consumer: str
    stream_seq: int
    subject: str
    payload: bytes
    deliveries: int
    error: str
    status: str
    created_at: datetime.datetime
    replayed_at: datetime.datetime | None


class DeadLetterStore:
    def __init__(self, engine: AsyncEngine, plumbing: Plumbing) -> None:
        self._engine = engine
        self._plumbing = plumbing
        self._table = plumbing.dead_letters

    async def park(self, *, stream: str, consumer: str, stream_seq: int, subject: str, payload: bytes,
                   deliveries: int, error: str) -> bool:
        """True if this call parked it; False if that message of that consumer was parked before."""
        async with self._engine.begin() as conn:
            inserted = await conn.execute(
                insert(self._table).values(
                    dead_letter_id=str(uuid.uuid4()), stream=stream, consumer=consumer, stream_seq=stream_seq,
                    subject=subject, payload=payload, deliveries=deliveries, error=error[:MAX_ERROR], status="parked",
                ).on_conflict_do_nothing(index_elements=[self._table.c.stream, self._table.c.consumer,
                                                         self._table.c.stream_seq])
                .returning(self._table.c.dead_letter_id))
            return inserted.first() is not None

    async def get(self, dead_letter_id: str) -> DeadLetterRecord | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(self._table).where(self._table.c.dead_letter_id == dead_letter_id))).first()
        return None if row is None else DeadLetterRecord(**row._mapping)

    async def list(self, *, status: str | None = None, limit: int = 1000) -> list[DeadLetterRecord]:
        query = (select(self._table).order_by(self._table.c.created_at.desc(), self._table.c.stream_seq.desc())
                 .limit(limit))
        if status is not None:
            query = query.where(self._table.c.status == status)
        async with self._engine.connect() as conn:
            return [DeadLetterRecord(**row._mapping) for row in await conn.execute(query)]

    async def replay(self, dead_letter_id: str, handlers: Mapping[str, Handler], *, actor: str) -> DeadLetterRecord:
        """`handlers`: consumer durable → its Subscription's handler (common/consumer.py)."""
        try:
            dead_letter_id = str(uuid.UUID(dead_letter_id))
        except ValueError:
            raise CheckoutError(ErrorCode.VALIDATION_FAILED,
                                validation_messages=["dead_letter_id: must be a UUID"]) from None
        letter = await self.get(dead_letter_id)
        if letter is None:
            raise CheckoutError(ErrorCode.DEAD_LETTER_NOT_FOUND)
        if letter.status == "replayed":
            return letter
        handler = handlers.get(letter.consumer)
        if handler is None:
            raise CheckoutError(ErrorCode.VALIDATION_FAILED, f"no consumer {letter.consumer!r} in this service",
                                suggested_action="replay it in the service whose consumer parked it")
        try:
            event = parse_event(letter.subject, bytes(letter.payload))
        except CannotHandle as error:
            raise CheckoutError(ErrorCode.VALIDATION_FAILED, f"the parked message cannot be handled: {error}",
                                suggested_action="publish a corrected event; this one cannot be replayed") from None
        try:
            await handler(event)
        except (CannotHandle, RetryLater) as error:
            await self._note_error(dead_letter_id, f"replay by {actor}: {error}")
            raise CheckoutError(ErrorCode.ORDER_NOT_PAYABLE, f"replay by {actor}: {error}",
                                suggested_action="fix what the error names, then replay again") from None
        async with UnitOfWork(self._engine, self._plumbing) as uow:
            await uow.conn.execute(update(self._table).where(self._table.c.dead_letter_id == dead_letter_id)
                                   .values(status="replayed", replayed_at=utc_now()))
            uow.audit(actor=actor, entity_type="dead_letter", entity_id=dead_letter_id, action="replayed",
                      before={"status": letter.status}, after={"status": "replayed", "consumer": letter.consumer})
            await uow.commit()
        replayed = await self.get(dead_letter_id)
        assert replayed is not None
        return replayed

    async def _note_error(self, dead_letter_id: str, error: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(update(self._table).where(self._table.c.dead_letter_id == dead_letter_id)
                               .values(error=error[:MAX_ERROR]))
