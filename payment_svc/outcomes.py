"""The one place a gateway's word about a payment changes our state.

The browser callback (VerifyPayment) and both webhook handlers call `apply_payment_outcome` with
what the gateway reported; the rules themselves are in domain/outcome_rules.py. Everything it does
happens in the caller's transaction, under a row lock on the payment row (then the order row,
always in that order), so a webhook and a callback for the same payment that arrive together
are applied one after the other: the second sees the first's result and changes nothing.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncConnection

from common.audit import append_audit
from common.clock import utc_now
from common.money import format_amount, from_minor_units, to_minor_units
from common.outbox import add_event
from order_svc import order_repository
from order_svc.order_repository import OrderRecord
from payment_svc import payment_repository
from payment_svc.domain.outcome_rules import (
    PaymentVerdict, Reported, ReportedStatus, SessionFacts, judge_payment, order_path_after_failure,
    order_path_to_paid, why_unpayable,
)
from payment_svc.order_moves import move_order
from payment_svc.payment_repository import PaymentRecord

Source = Literal["callback", "webhook", "reconcile"]
OutcomeKind = Literal["captured", "failed", "duplicate", "ignored", "flagged", "unknown_session"]


@dataclasses.dataclass(frozen=True)
class OutcomeResult:
    kind: OutcomeKind
    payment: PaymentRecord | None  # the session after this call; None when no session has that gateway order
    order_status: str | None  # the order's status after this call
    changed: bool  # did this call change any row (payment or order)?
    flagged: bool  # was an audit row flagged for review (amount mismatch, money for an unpayable order)?
    reason: str = ""


async def apply_payment_outcome(
    conn: AsyncConnection,
    *,
    gateway: str,
    gateway_order_id: str,
    gateway_payment_id: str,
    status: ReportedStatus,
    amount_minor: int,
    currency: str,
    source: Source,
    actor: str,
    now: datetime.datetime | None = None,
) -> OutcomeResult:
    """Apply the gateway's report on one payment of one gateway order. Call it inside a transaction
    (`async with conn.begin():`) and commit what it wrote together with your own rows.

    `status` is the gateway's, already mapped: "captured", "failed" or "pending" (pending changes
    nothing). `amount_minor`/`currency` are what the gateway says it took; they are compared with
    the session. Idempotent: the same report twice changes state once (the second is "duplicate").
    """
    if not conn.in_transaction():
        raise RuntimeError("apply_payment_outcome must run inside the caller's transaction")
    now = now or utc_now()
    session = await payment_repository.by_gateway_order(conn, gateway, gateway_order_id, for_update=True)
    if session is None:
        flagged = status == "captured"
        await append_audit(conn, actor=actor, entity_type="payment", entity_id=f"{gateway}:{gateway_order_id}",
                           action="outcome:unknown_session", before=None, flagged=flagged,
                           after={"gateway_payment_id": gateway_payment_id, "status": status, "source": source,
                                  "amount_minor": amount_minor, "currency": currency})
        return OutcomeResult("unknown_session", None, None, False, flagged, "no session has this gateway order")
    order = await order_repository.get_order(conn, session.order_token, for_update=True)
    assert order is not None, "payment_tokens.order_token references orders"
    reported = Reported(status, gateway_payment_id, amount_minor, currency.upper())
    verdict = judge_payment(SessionFacts(session.status, to_minor_units(session.amount), session.currency,
                                         session.gateway_payment_id), reported)
    step = _Step(conn, session, order, reported, source, actor, now)
    if verdict is PaymentVerdict.CAPTURE:
        return await step.capture()
    if verdict is PaymentVerdict.FAIL:
        return await step.fail()
    if verdict is PaymentVerdict.AMOUNT_MISMATCH:
        reason = (f"captured {format_amount(from_minor_units(amount_minor))} {currency.upper()}, the session is "
                  f"{format_amount(session.amount)} {session.currency}: not fulfilled")
        return await step.flag(reason, changed=False)
    if verdict is PaymentVerdict.SECOND_CAPTURE:
        return await step.flag("a second captured payment of a captured session: refund it", changed=False)
    kind: OutcomeKind = "duplicate" if verdict is PaymentVerdict.DUPLICATE else "ignored"
    return OutcomeResult(kind, session, order.status, False, False)


@dataclasses.dataclass
class _Step:
    conn: AsyncConnection
    session: PaymentRecord
    order: OrderRecord
    reported: Reported
    source: Source
    actor: str
    now: datetime.datetime

    async def capture(self) -> OutcomeResult:
        payment = await self._set_payment("captured")
        path = order_path_to_paid(self.order.status)
        if path is None:
            self.session = payment
            return await self.flag(why_unpayable(self.order.status), changed=True)
        order = self.order
        for target in path:
            more = {"payment_token": payment.token} if target == "paid" else {}
            order = await move_order(self.conn, order, target, actor=self.actor, now=self.now,
                                     reason=f"payment captured ({self.source})", **more)
        await add_event(self.conn, subject="checkout.payment.captured", aggregate_id=order.order_token, payload={
            "order_token": order.order_token, "payment_token": payment.token, "user_id": order.user_id,
            "amount": format_amount(payment.amount), "currency": payment.currency, "gateway": payment.gateway,
            "gateway_payment_id": self.reported.gateway_payment_id, "source": self.source,
        })
        return OutcomeResult("captured", payment, order.status, True, False)

    async def fail(self) -> OutcomeResult:
        payment = await self._set_payment("failed")
        latest = await payment_repository.latest_attempt(self.conn, self.order.order_token) == payment.attempt
        order = self.order
        for target in order_path_after_failure(order.status, latest_attempt=latest):
            order = await move_order(self.conn, order, target, actor=self.actor, now=self.now,
                                     reason=f"payment failed ({self.source})")
        await add_event(self.conn, subject="checkout.payment.failed", aggregate_id=order.order_token, payload={
            "order_token": order.order_token, "payment_token": payment.token, "user_id": order.user_id,
            "gateway": payment.gateway, "gateway_payment_id": self.reported.gateway_payment_id, "source": self.source,
        })
        return OutcomeResult("failed", payment, order.status, True, False)

    async def flag(self, reason: str, *, changed: bool) -> OutcomeResult:
        """Money we will not fulfil: a flagged audit row and an event for whoever reviews them."""
        session, reported = self.session, self.reported
        facts = {"gateway": session.gateway, "gateway_order_id": session.gateway_order_id,
                 "gateway_payment_id": reported.gateway_payment_id, "reported_status": reported.status,
                 "reported_amount": format_amount(from_minor_units(reported.amount_minor)),
                 "reported_currency": reported.currency, "expected_amount": format_amount(session.amount),
                 "expected_currency": session.currency, "order_status": self.order.status,
                 "source": self.source, "reason": reason}
        await append_audit(self.conn, actor=self.actor, entity_type="payment", entity_id=session.token,
                           action="outcome:flagged", before={"status": session.status}, after=facts, flagged=True)
        await add_event(self.conn, subject="checkout.payment.flagged", aggregate_id=self.order.order_token,
                        payload={"order_token": self.order.order_token, "payment_token": session.token, **facts})
        return OutcomeResult("flagged", session, self.order.status, changed, True, reason)

    async def _set_payment(self, status: str) -> PaymentRecord:
        before = {"status": self.session.status, "gateway_payment_id": self.session.gateway_payment_id}
        payment = await payment_repository.set_status(self.conn, self.session.token, status, self.now,
                                                      gateway_payment_id=self.reported.gateway_payment_id)
        await append_audit(self.conn, actor=self.actor, entity_type="payment", entity_id=payment.token,
                           action=f"status:{status}", before=before,
                           after={"status": status, "gateway_payment_id": self.reported.gateway_payment_id,
                                  "amount": format_amount(from_minor_units(self.reported.amount_minor)),
                                  "currency": self.reported.currency, "source": self.source})
        return payment
