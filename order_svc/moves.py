"""The only writer of an order's status: `move_order` (an order the caller locked) and
`move_order_from` (a conditional UPDATE … RETURNING when the rule is "in this status"), through the
state machine, with one audit row and one `checkout.order.<status>` event in the caller's unit of
work. Also the events and audit rows of the two things that are not moves: an order coming to be
(step 3 of the saga) and money flagged for an order that can no longer take it."""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping
from typing import Any

from google.protobuf import json_format

from checkout.events.v1 import events_pb2
from checkout.internal.v1 import cart_checkout_pb2
from common.clock import rfc3339
from common.money import format_amount
from common.uow import UnitOfWork
from order_svc.domain.invoices import document_number
from order_svc.domain.order_status import transition
from order_svc.repository import FinishedKey, OrderRecord, OrderRepository
from order_svc.tax_document_repository import InvoiceToIssue

ORDER = "order"


def order_event(order: OrderRecord, now: datetime.datetime, *, previous: str = "", reason: str = "",
                payment_token: str | None = None, with_lines: bool = False) -> events_pb2.OrderEvent:
    """docs/EVENTS.md: `lines` on created and paid (what was bought), `enrollment_ids` on fulfilled."""
    event = events_pb2.OrderEvent(
        order_token=order.order_token, user_id=order.user_id, cart_token=order.cart_token, status=order.status,
        previous=previous, reason=reason, currency=order.currency, total=format_amount(order.total),
        payment_token=payment_token or order.payment_token or "", discount_code=order.discount_code or "",
        occurred_at=rfc3339(now))
    if with_lines:
        event.lines.extend(json_format.ParseDict(line, cart_checkout_pb2.OrderLine(), ignore_unknown_fields=True)
                           for line in order.items)
    if order.status == "fulfilled":
        event.enrollment_ids.extend(order.enrollment_ids)
    return event


async def move_order(uow: UnitOfWork, repository: OrderRepository, order: OrderRecord, target: str, *,
                     now: datetime.datetime, actor: str, reason: str = "", invoice_number: str | None = None,
                     **changes: Any) -> OrderRecord:
    """`order` (locked by the caller) moved to `target` with `changes` to other columns; 2102 if
    the state machine refuses. `invoice_number`: of the tax invoice the caller issued with the
    move, for its audit row."""
    status = transition(order.status, target)
    await repository.update_order(uow.conn, order.order_token, status=status, updated_at=now, **changes)
    moved = dataclasses.replace(order, status=status, updated_at=now, **changes)
    _record_move(uow, moved, order.status, now=now, actor=actor, reason=reason,
                 changes=_noting_invoice(changes, invoice_number))
    return moved


async def move_order_from(uow: UnitOfWork, repository: OrderRepository, order_token: str, source: str, target: str,
                          *, now: datetime.datetime, actor: str, reason: str = "",
                          expected: Mapping[str, Any] | None = None, payment_patch: Mapping[str, str] | None = None,
                          finish_key: FinishedKey | None = None, invoice: InvoiceToIssue | None = None,
                          **changes: Any) -> OrderRecord | None:
    """The order moved from `source` to `target` (with `changes`, and `payment_patch` over its
    payment view) in one statement, if it is in `source` (and its columns hold `expected`): the
    moved order, or None when it is not (nothing written; the caller reads it to see why). The
    state machine must allow source → target. If the order moved, the same statement also
    finishes `finish_key` (an Idempotency-Key) and issues `invoice` (its number in the move's
    audit row)."""
    status = transition(source, target)
    expected = {**(expected or {}), "status": source}
    invoice_number = None
    if invoice is None:
        moved = await repository.update_order_if(uow.conn, order_token, expected, payment_patch=payment_patch,
                                                 finish_key=finish_key, status=status, updated_at=now, **changes)
    else:
        assert finish_key is None, "one statement finishes a key or issues an invoice, not both (none needs it)"
        issued = await repository.update_order_and_invoice_if(uow.conn, order_token, expected, invoice,
                                                              payment_patch=payment_patch, status=status,
                                                              updated_at=now, **changes)
        moved, sequence = issued or (None, None)
        if sequence is not None:
            invoice_number = document_number(invoice.series, sequence)
    if moved is not None:
        if payment_patch is not None:
            changes = {**changes, "payment": moved.payment}
        _record_move(uow, moved, source, now=now, actor=actor, reason=reason,
                     changes=_noting_invoice(changes, invoice_number))
    return moved


def _noting_invoice(changes: Mapping[str, Any], invoice_number: str | None) -> Mapping[str, Any]:
    """What the audit row of a move says changed: the columns, and the tax invoice issued with it
    (one audit row per state change)."""
    return changes if invoice_number is None else {**changes, "invoice": invoice_number}


def _record_move(uow: UnitOfWork, moved: OrderRecord, previous: str, *, now: datetime.datetime, actor: str,
                 reason: str, changes: Mapping[str, Any]) -> None:
    """A move's event and its audit row."""
    status = moved.status
    uow.publish(f"checkout.order.{status}", moved.order_token, order_event(moved, now, previous=previous,
                                                                          reason=reason, with_lines=status == "paid"))
    uow.audit(actor=actor, entity_type=ORDER, entity_id=moved.order_token, action=f"status:{status}",
              before={"status": previous}, after={"status": status, "reason": reason, **changes})


def record_created(uow: UnitOfWork, order: OrderRecord, *, actor: str) -> None:
    """The event and audit row of an order inserted by the saga (status pending)."""
    uow.publish("checkout.order.created", order.order_token, order_event(order, order.created_at, with_lines=True))
    uow.audit(actor=actor, entity_type=ORDER, entity_id=order.order_token, action="created", before=None,
              after={"status": order.status, "total": order.total, "currency": order.currency,
                     "discount_code": order.discount_code, "exchange_rate": order.exchange_rate,
                     "cart_token": order.cart_token})


def flag_payment(uow: UnitOfWork, order: OrderRecord, *, payment_token: str, reason: str, now: datetime.datetime,
                 actor: str, captured: dict[str, str]) -> None:
    """Money that arrived for an order that cannot take it: a flagged audit row for the refunds desk
    and `checkout.order.payment_flagged`; the order's status does not change."""
    uow.audit(actor=actor, entity_type=ORDER, entity_id=order.order_token, action="payment_flagged",
              before={"status": order.status}, after={"payment_token": payment_token, "reason": reason, **captured},
              flagged=True)
    event = order_event(order, now, reason=reason, payment_token=payment_token)
    uow.publish("checkout.order.payment_flagged", order.order_token, event)
