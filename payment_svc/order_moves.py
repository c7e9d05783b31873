"""Moving an order through its state machine from payment_svc (capture, failure, expiry).

Every step goes through order_svc.domain.order_status.transition and writes what order_svc's own
moves write: the new status, an audit row and a `checkout.order.<status>` outbox event, in the
caller's transaction.
"""

from __future__ import annotations

import dataclasses
import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from common.audit import append_audit
from common.outbox import add_event
from order_svc import order_repository
from order_svc.domain.order_status import transition
from order_svc.order_repository import OrderRecord


async def move_order(conn: AsyncConnection, order: OrderRecord, target: str, *, actor: str, now: datetime.datetime,
                     reason: str, **more: object) -> OrderRecord:
    status = transition(order.status, target)
    await order_repository.set_status(conn, order.order_token, status, now, **more)
    await add_event(conn, subject=f"checkout.order.{status}", aggregate_id=order.order_token,
                    payload={"order_token": order.order_token, "status": status, "previous": order.status,
                             "reason": reason})
    await append_audit(conn, actor=actor, entity_type="order", entity_id=order.order_token, action=f"status:{status}",
                       before={"status": order.status}, after={"status": status, "reason": reason, **more})
    return dataclasses.replace(order, status=status, updated_at=now, **more)  # type: ignore[arg-type]
