"""The one place a gateway's word about a payment changes a payment session.

The browser callback (VerifyPayment), both webhook handlers and the reconciler call
`apply_payment_outcome` with what the gateway reported; the rules themselves are in
domain/outcome_rules.py. It works in the caller's unit of work, under the session's row lock (taken
by a SELECT … FOR UPDATE, or by the conditional UPDATE that applies a verdict on the session as the
caller saw it), so a webhook and a callback for the same payment that arrive together are applied
one after the other: the second sees the first's result and changes nothing.

It changes only the session, and says what happened: `checkout.payment.captured` / `failed`
(with the source), or `checkout.payment.flagged` for money that does not match the session. It
never reads or moves the order: order_svc consumes those events and decides whether a capture
pays the order (or is money for an order that can no longer be paid).

Its event is recorded in the trace of the request that opened the session (common/tracing.py
`resumed`; a span linked to the webhook's or callback's own trace), so the checkout's trace goes
on to the order's payment and the enrollment.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping
from typing import Any, Literal

from common.clock import utc_now
from common.money import format_amount, from_minor_units, to_minor_units
from common.tracing import resumed
from common.uow import UnitOfWork
from payment_svc import payment_events
from payment_svc.domain.outcome_rules import PaymentVerdict, Reported, ReportedStatus, SessionFacts, judge_payment
from payment_svc.repository import PaymentRecord, PaymentRepository

Source = Literal["callback", "webhook", "reconcile"]
OutcomeKind = Literal["captured", "failed", "duplicate", "ignored", "flagged", "unknown_session"]


@dataclasses.dataclass(frozen=True)
class OutcomeResult:
    kind: OutcomeKind
    payment: PaymentRecord | None  # the session after this call; None when no session has that gateway order
    changed: bool  # did this call change the session?
    flagged: bool  # was an audit row flagged for review (amount mismatch, a second capture, an unknown order)?
    reason: str = ""


@dataclasses.dataclass(frozen=True)
class GatewayReport:
    """What a gateway says about one payment of one of our gateway orders. `status` is the
    gateway's, mapped: "captured", "failed" or "pending" (pending changes nothing);
    `amount_minor`/`currency` are what it says it took."""

    gateway: str
    gateway_order_id: str
    gateway_payment_id: str
    status: ReportedStatus
    amount_minor: int
    currency: str
    payment_token: str = ""  # our session, when the gateway's report names only its payment (a Stripe intent)


async def apply_payment_outcome(uow: UnitOfWork, repository: PaymentRepository, report: GatewayReport, *,
                                source: Source, actor: str, now: datetime.datetime | None = None,
                                seen: PaymentRecord | None = None,
                                webhook_event: Mapping[str, Any] | None = None) -> OutcomeResult:
    """Apply the gateway's report in the caller's open unit of work (the caller commits what it
    recorded together with its own rows). Idempotent: the same report twice changes state once
    (the second is "duplicate").

    `seen`: the session as the caller read it in this transaction without a lock. A capture or a
    failure judged on it is applied by one conditional UPDATE, if the session is still as seen; a
    verdict on a captured session (final) stands as is; anything else is judged again on the
    session read under its row lock.

    `webhook_event`: the webhook event that brought the report (its id, type, …): a change it makes
    carries it on the change's own audit row (one row per state change, with what caused it)."""
    conn = uow.conn  # raises unless the unit of work is open
    now = now or utc_now()
    if seen is not None:
        result = await _decide(uow, repository, seen, report, source, actor, now, webhook_event, unlocked=True)
        if result is not None:
            return result
    session = await repository.by_gateway_order(conn, report.gateway, report.gateway_order_id, for_update=True)
    if session is None and report.payment_token:
        session = await repository.by_token(conn, report.payment_token, for_update=True)
        if session is not None and session.gateway != report.gateway:
            session = None
    if session is None:
        flagged = report.status == "captured"
        uow.audit(actor=actor, entity_type="payment", entity_id=f"{report.gateway}:{report.gateway_order_id}",
                  action="outcome:unknown_session", before=None, flagged=flagged,
                  after={"gateway_payment_id": report.gateway_payment_id, "status": report.status, "source": source,
                         "amount_minor": report.amount_minor, "currency": report.currency})
        return OutcomeResult("unknown_session", None, False, flagged, "no session has this gateway order")
    result = await _decide(uow, repository, session, report, source, actor, now, webhook_event, unlocked=False)
    assert result is not None
    return result


async def _decide(uow: UnitOfWork, repository: PaymentRepository, session: PaymentRecord, report: GatewayReport,
                  source: Source, actor: str, now: datetime.datetime, webhook_event: Mapping[str, Any] | None, *,
                  unlocked: bool) -> OutcomeResult | None:
    """The verdict on `report` for `session`, applied. `unlocked`: the session was read without its
    row lock; None when that cannot settle it (the caller locks and judges again)."""
    reported = Reported(report.status, report.gateway_payment_id, report.amount_minor, report.currency.upper())
    verdict = judge_payment(SessionFacts(session.status, to_minor_units(session.amount), session.currency,
                                         session.gateway_payment_id), reported)
    step = _Step(uow, repository, session, reported, source, actor, now, webhook_event)
    if verdict is PaymentVerdict.CAPTURE:
        return await step.settle("captured", payment_events.CAPTURED, unlocked=unlocked)
    if verdict is PaymentVerdict.FAIL:
        return await step.settle("failed", payment_events.FAILED, unlocked=unlocked)
    if unlocked and session.status != "captured":
        return None  # a verdict that changes nothing may change with the session: judge it locked
    if verdict is PaymentVerdict.AMOUNT_MISMATCH:
        return step.flag(f"captured {format_amount(from_minor_units(reported.amount_minor))} {reported.currency}, "
                         f"the session is {format_amount(session.amount)} {session.currency}: not fulfilled")
    if verdict is PaymentVerdict.SECOND_CAPTURE:
        return step.flag("a second captured payment of a captured session: refund it")
    return OutcomeResult("duplicate" if verdict is PaymentVerdict.DUPLICATE else "ignored", session, False, False)


@dataclasses.dataclass
class _Step:
    uow: UnitOfWork
    repository: PaymentRepository
    session: PaymentRecord
    reported: Reported
    source: Source
    actor: str
    now: datetime.datetime
    webhook_event: Mapping[str, Any] | None = None

    async def settle(self, status: Literal["captured", "failed"], subject: str, *,
                     unlocked: bool = False) -> OutcomeResult | None:
        """The session's one state change: its row, one audit row, one event. `unlocked`: only if
        the session is still as read (else None, nothing done)."""
        before = {"status": self.session.status, "gateway_payment_id": self.session.gateway_payment_id}
        if unlocked:
            changed = await self.repository.set_status_if(self.uow.conn, self.session, status, self.now,
                                                          gateway_payment_id=self.reported.gateway_payment_id)
            if changed is None:
                return None
            payment = changed
        else:
            payment = await self.repository.set_status(self.uow.conn, self.session.token, status, self.now,
                                                       gateway_payment_id=self.reported.gateway_payment_id)
        after: dict[str, Any] = {"status": status, "gateway_payment_id": self.reported.gateway_payment_id,
                                 "amount": format_amount(from_minor_units(self.reported.amount_minor)),
                                 "currency": self.reported.currency, "source": self.source}
        if self.webhook_event is not None:
            after["webhook_event"] = dict(self.webhook_event)
        self.uow.audit(actor=self.actor, entity_type="payment", entity_id=payment.token, action=f"status:{status}",
                       before=before, after=after)
        with resumed(self.session.trace_context, f"payment.{status}", {"source": self.source}):
            payment_events.publish_payment_event(self.uow, subject, payment, self.now, source=self.source)
        return OutcomeResult(status, payment, True, False)

    def flag(self, reason: str) -> OutcomeResult:
        """Money we will not apply: a flagged audit row and an event for whoever reviews them; the
        session does not change."""
        session, reported = self.session, self.reported
        facts = {"gateway": session.gateway, "gateway_order_id": session.gateway_order_id,
                 "gateway_payment_id": reported.gateway_payment_id, "reported_status": reported.status,
                 "reported_amount": format_amount(from_minor_units(reported.amount_minor)),
                 "reported_currency": reported.currency, "expected_amount": format_amount(session.amount),
                 "expected_currency": session.currency, "order_token": session.order_token,
                 "source": self.source, "reason": reason}
        self.uow.audit(actor=self.actor, entity_type="payment", entity_id=session.token, action="outcome:flagged",
                       before={"status": session.status}, after=facts, flagged=True)
        with resumed(session.trace_context, "payment.flagged", {"source": self.source}):
            payment_events.publish_payment_event(self.uow, payment_events.FLAGGED, session, self.now,
                                                 source=self.source, reason=reason,
                                                 gateway_payment_id=reported.gateway_payment_id)
        return OutcomeResult("flagged", session, False, True, reason)
