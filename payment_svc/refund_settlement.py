"""The one place a gateway's word about a refund changes a refund: the create call's own answer,
a refund webhook and the refund reconciler all call `apply_refund_report` in their open unit of
work, under the refund's row lock. Forward only (domain/refunds.judge_settlement): the same news
twice changes nothing; news that contradicts a final status is audited (flagged) and changes
nothing. Each final status publishes one RefundEvent (refund_events.py) and writes one audit row.

A refund the gateway reports that we did not start (made in its dashboard) is recorded as a
refund of the session whose payment it names (origin `gateway`), so what is left to refund stays
true; one that would take more than is left is recorded all the same (the gateway's word is the
money's truth) and flagged for review.
"""

from __future__ import annotations

import dataclasses
import datetime
import uuid
from typing import Literal

from common.money import format_amount, from_minor_units, to_minor_units
from common.uow import UnitOfWork
from payment_svc.domain.refunds import judge_settlement, left_to_refund
from payment_svc.metrics import REFUNDS
from payment_svc.refund_events import publish_refund_event
from payment_svc.refund_repository import RefundRecord, RefundRepository
from payment_svc.repository import PaymentRepository

ReportedRefundStatus = Literal["processed", "failed", "pending"]
RefundSource = Literal["create", "webhook", "reconcile"]
RefundOutcome = Literal["settled", "noted", "duplicate", "conflict", "recorded", "unknown_payment"]


@dataclasses.dataclass(frozen=True)
class RefundReport:
    gateway: str
    gateway_refund_id: str
    gateway_payment_id: str
    status: ReportedRefundStatus
    amount_minor: int
    currency: str
    refund_id: str = ""  # ours, when the gateway echoes it (notes / metadata)
    failure_reason: str = ""


@dataclasses.dataclass(frozen=True)
class RefundResult:
    outcome: RefundOutcome
    refund: RefundRecord | None
    flagged: bool = False


def _uuid_or_empty(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return ""


async def apply_refund_report(uow: UnitOfWork, refunds: RefundRepository, payments: PaymentRepository,
                              report: RefundReport, *, source: RefundSource, actor: str,
                              now: datetime.datetime, refund: RefundRecord | None = None) -> RefundResult:
    """`refund`: the caller's own refund, already row-locked (the create and the reconciler); else
    it is found by the gateway's refund id, then by ours from the notes, and locked here."""
    conn = uow.conn
    if refund is None:
        refund = await refunds.lock_by_gateway_refund(conn, report.gateway, report.gateway_refund_id)
    if refund is None and (ours := _uuid_or_empty(report.refund_id)):
        refund = await refunds.by_id(conn, ours, for_update=True)
        if refund is not None and refund.gateway != report.gateway:
            refund = None
    if refund is None:
        return await _record_foreign(uow, refunds, payments, report, source=source, actor=actor, now=now)
    changes: dict[str, object] = {}
    if refund.gateway_refund_id is None and report.gateway_refund_id:
        changes["gateway_refund_id"] = report.gateway_refund_id
    if report.amount_minor != to_minor_units(refund.amount) or report.currency.upper() != refund.currency:
        uow.audit(actor=actor, entity_type="refund", entity_id=refund.refund_id, action="refund:mismatch", flagged=True,
                  before={"amount": refund.amount, "currency": refund.currency},
                  after={"reported_amount": format_amount(from_minor_units(report.amount_minor)),
                         "reported_currency": report.currency, "gateway_refund_id": report.gateway_refund_id,
                         "reported_status": report.status, "source": source})
        if changes:
            refund = await refunds.update(conn, refund.refund_id, updated_at=now, **changes)
        REFUNDS.labels(refund.gateway, "flagged").inc()
        return RefundResult("conflict", refund, flagged=True)
    verdict = judge_settlement(refund.status, report.status)
    if verdict == "conflict":
        uow.audit(actor=actor, entity_type="refund", entity_id=refund.refund_id, action="refund:conflict", flagged=True,
                  before={"status": refund.status}, after={"reported_status": report.status, "source": source,
                                                           "gateway_refund_id": report.gateway_refund_id})
        REFUNDS.labels(refund.gateway, "flagged").inc()
        return RefundResult("conflict", refund, flagged=True)
    if verdict == "duplicate":
        if changes:
            refund = await refunds.update(conn, refund.refund_id, updated_at=now, **changes)
            uow.audit(actor=actor, entity_type="refund", entity_id=refund.refund_id, action="refund:submitted",
                      before={"gateway_refund_id": None}, after={"gateway_refund_id": refund.gateway_refund_id,
                                                                 "status": refund.status, "source": source})
            return RefundResult("noted", refund)
        return RefundResult("duplicate", refund)
    before = {"status": refund.status, "gateway_refund_id": refund.gateway_refund_id}
    refund = await refunds.update(conn, refund.refund_id, status=report.status, updated_at=now, next_check_at=None,
                                  failure_reason=report.failure_reason or None if report.status == "failed" else None,
                                  **changes)
    uow.audit(actor=actor, entity_type="refund", entity_id=refund.refund_id, action=f"refund:{refund.status}",
              before=before, after={"status": refund.status, "gateway_refund_id": refund.gateway_refund_id,
                                    "amount": refund.amount, "currency": refund.currency, "source": source,
                                    "failure_reason": refund.failure_reason})
    await _publish(uow, refunds, payments, refund, now, source)
    REFUNDS.labels(refund.gateway, refund.status).inc()
    return RefundResult("settled", refund)


async def _publish(uow: UnitOfWork, refunds: RefundRepository, payments: PaymentRepository, refund: RefundRecord,
                   now: datetime.datetime, source: str) -> None:
    session = await payments.by_token(uow.conn, refund.payment_token)
    assert session is not None  # a foreign key
    totals = await refunds.totals(uow.conn, refund.payment_token)
    publish_refund_event(uow, refund, session, totals, now, source=source)


async def _record_foreign(uow: UnitOfWork, refunds: RefundRepository, payments: PaymentRepository,
                          report: RefundReport, *, source: RefundSource, actor: str,
                          now: datetime.datetime) -> RefundResult:
    conn = uow.conn
    session = await refunds.lock_session_of_payment(conn, report.gateway, report.gateway_payment_id)
    facts = {"gateway_refund_id": report.gateway_refund_id, "gateway_payment_id": report.gateway_payment_id,
             "reported_status": report.status, "amount_minor": report.amount_minor, "currency": report.currency,
             "source": source}
    if session is None or session.status != "captured":
        uow.audit(actor=actor, entity_type="refund", entity_id=f"{report.gateway}:{report.gateway_refund_id}",
                  action="refund:unknown_payment", before=None, after=facts, flagged=True)
        return RefundResult("unknown_payment", None, flagged=True)
    amount = from_minor_units(report.amount_minor)
    totals = await refunds.totals(conn, session.token)
    too_much = report.status != "failed" and amount > left_to_refund(session.amount, totals.held)
    refund = await refunds.insert(
        conn, refund_id=str(uuid.uuid4()), order_token=session.order_token, payment_token=session.token,
        gateway=report.gateway, gateway_payment_id=report.gateway_payment_id,
        gateway_refund_id=report.gateway_refund_id, amount=amount, currency=report.currency.upper(),
        status=report.status, reason="made at the gateway", origin="gateway", requested_by=actor,
        next_check_at=now if report.status == "pending" else None, created_at=now, updated_at=now)
    uow.audit(actor=actor, entity_type="refund", entity_id=refund.refund_id, action="refund:recorded_from_gateway",
              before=None, after={**facts, "order_token": refund.order_token, "exceeds_left_to_refund": too_much},
              flagged=too_much)
    if refund.status != "pending":
        await _publish(uow, refunds, payments, refund, now, source)
    REFUNDS.labels(refund.gateway, "recorded").inc()
    return RefundResult("recorded", refund, flagged=too_much)
