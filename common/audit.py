"""The append-only audit trail: one row per change, written in the transaction that makes it.

Writing through the caller's connection means the row exists exactly when the change does: a
rolled-back change leaves no audit row, and a committed one cannot lack it.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from common.request_context import correlation_id
from common.tables import audit_log


# Built once: a statement built per call costs more CPU than sending it (SQLAlchemy's cache key
# and compile lookups are memoised on the statement object).
_INSERT = insert(audit_log).values({name: bindparam(name) for name in (
    "actor", "correlation_id", "entity_type", "entity_id", "action", "before", "after", "flagged")})


async def append_audit(
    conn: AsyncConnection,
    *,
    actor: str,
    entity_type: str,
    entity_id: str,
    action: str,
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    flagged: bool = False,
) -> None:
    """`before`/`after` may hold Decimals, datetimes, UUIDs, sets and dataclasses; they are stored as JSON."""
    await conn.execute(_INSERT, {
        "actor": actor,
        "correlation_id": correlation_id(),
        "entity_type": entity_type,
        "entity_id": entity_id,
        "action": action,
        "before": None if before is None else jsonable(before),
        "after": None if after is None else jsonable(after),
        "flagged": flagged,
    })


def jsonable(value: Any) -> Any:
    """Plain JSON values; Decimals become strings so no amount passes through a float."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime.datetime):
        return value.astimezone(datetime.UTC).isoformat()
    if isinstance(value, (uuid.UUID, datetime.date)):
        return str(value)
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable(dataclasses.asdict(value))
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (set, frozenset)):
        return sorted(jsonable(item) for item in value)
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    raise TypeError(f"cannot store {type(value).__name__} in the audit log")
