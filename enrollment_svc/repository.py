"""SQL for enrollment_svc's own schema: the enrollments. (Its outbox, audit log and dead letters
are written by common/uow.py and common/dead_letters.py.)"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from sqlalchemy import bindparam, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from enrollment_svc.domain.paid_order import Enrollment
from enrollment_svc.tables import enrollments

_COLUMNS = [enrollments.c[field.name] for field in dataclasses.fields(Enrollment)]
_ORDER = (enrollments.c.created_at, enrollments.c.order_token, enrollments.c.line_no)
# Built once: each call only binds its values.
_OF_ORDER = select(*_COLUMNS).where(enrollments.c.order_token == bindparam("order_token")).order_by(enrollments.c.line_no)
_OF_USER = select(*_COLUMNS).where(enrollments.c.user_id == bindparam("user_id")).order_by(*_ORDER)
_CANCEL_OF_ORDER = (update(enrollments)
                    .where(enrollments.c.order_token == bindparam("w_order_token"), enrollments.c.status == "active")
                    .values(status="cancelled").returning(*_COLUMNS))
_ADD_NEW = (insert(enrollments).values({column.name: bindparam(column.name) for column in _COLUMNS})
            .on_conflict_do_nothing(index_elements=[enrollments.c.order_token, enrollments.c.line_no])
            .returning(*_COLUMNS))


class EnrollmentRepository:
    async def of_order(self, conn: AsyncConnection, order_token: str) -> list[Enrollment]:
        rows = await conn.execute(_OF_ORDER, {"order_token": order_token})
        return [Enrollment(**row._mapping) for row in rows]

    async def add_new(self, conn: AsyncConnection, new: Sequence[Enrollment]) -> list[Enrollment]:
        """Inserts those whose (order_token, line_no) is free and returns them; a line already
        enrolled (or being enrolled by a transaction that then commits) is skipped. One INSERT for
        all of them (SQLAlchemy's insertmanyvalues)."""
        if not new:
            return []
        rows = await conn.execute(_ADD_NEW, [dataclasses.asdict(enrollment) for enrollment in new])
        return sorted((Enrollment(**row._mapping) for row in rows), key=lambda e: (e.order_token, e.line_no))

    async def cancel_of_order(self, conn: AsyncConnection, order_token: str) -> list[Enrollment]:
        """The order's active enrollments, now cancelled (none: cancelled before, or none yet)."""
        rows = await conn.execute(_CANCEL_OF_ORDER, {"w_order_token": order_token})
        return sorted((Enrollment(**row._mapping) for row in rows), key=lambda e: e.line_no)

    async def of_user(self, conn: AsyncConnection, user_id: str) -> list[Enrollment]:
        rows = await conn.execute(_OF_USER, {"user_id": user_id})
        return [Enrollment(**row._mapping) for row in rows]
