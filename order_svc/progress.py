"""What happens to an order after it is placed, told by events (workers/consumers.py parses them):
a payment captured, failed or expired (payment_svc), its enrollments created (enrollment_svc), a
refund processed (payment_svc: refunded_amount, a credit note, `refunded` once fully refunded).

Each use case is one unit of work on the order's locked row, idempotent under redelivery: the
state machine refuses a second move and a repeated event finds nothing to change. An event for
an order that is not there yet is retried later (RetryLater); one that can never apply without a
person is parked (CannotHandle).
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncConnection

from common.clock import utc_now
from common.consumed import CannotHandle, RetryLater
from common.money import format_amount, parse_amount
from common.uow import UnitOfWorkFactory
from order_svc.domain.order_status import MAY_BE_PAID, REFUNDABLE
from order_svc.domain.payments import capture_verdict, failure_moves_order, is_current_attempt
from order_svc.moves import flag_payment, move_order, move_order_from
from order_svc.repository import OrderRecord, OrderRepository
from order_svc.tax_documents import TaxDocuments
from order_svc.views import PaymentView

ACTOR = "order_svc"
Outcome = Literal["paid", "payment_failed", "fulfilled", "view_updated", "flagged", "duplicate", "ignored",
                  "refund_noted", "refunded"]


@dataclasses.dataclass(frozen=True)
class PaymentOutcome:
    """A checkout.payment.* event, as plain values."""

    order_token: str
    payment_token: str
    attempt: int
    status: str
    amount: Decimal
    currency: str
    gateway: str = ""
    gateway_order_id: str = ""
    gateway_payment_id: str = ""
    source: str = ""
    expires_at: str = ""
    checkout_url: str = ""

    def view(self) -> PaymentView:
        return PaymentView(payment_token=self.payment_token, gateway=self.gateway,
                           gateway_order_id=self.gateway_order_id, checkout_url=self.checkout_url, status=self.status,
                           amount=format_amount(self.amount), currency=self.currency, expires_at=self.expires_at,
                           order_token=self.order_token)


@dataclasses.dataclass(frozen=True)
class RefundProcessed:
    """A checkout.payment.refund_processed event, as plain values."""

    order_token: str
    refund_id: str
    amount: Decimal
    currency: str
    refunded_amount: Decimal  # every processed refund of the payment, this one included
    fully_refunded: bool
    reason: str = ""


def merged_view(order: OrderRecord, outcome: PaymentOutcome) -> dict[str, str]:
    """The order's view of this payment's session after the event (what it knew, updated)."""
    told = outcome.view()
    if order.payment is not None and order.payment.get("payment_token") == outcome.payment_token:
        return PaymentView.from_json(order.payment).updated(told).as_json()
    return told.as_json()


class OrderProgress:
    def __init__(self, uow: UnitOfWorkFactory, repository: OrderRepository,
                 clock: Callable[[], datetime.datetime] = utc_now, *, documents: TaxDocuments | None = None) -> None:
        """`documents`: where a paid order's tax invoice is issued, in the transaction that pays it
        (None: no invoices, for tests of the moves alone)."""
        self._uow = uow
        self._repository = repository
        self._clock = clock
        self._documents = documents

    async def _locked(self, conn: AsyncConnection, order_token: str) -> OrderRecord:
        order = await self._repository.get_order(conn, order_token, for_update=True)
        if order is None:
            raise RetryLater(f"order {order_token} not found (not there yet?)")
        return order

    async def payment_captured(self, outcome: PaymentOutcome) -> Outcome:
        async with self._uow() as uow:
            # The usual case in one statement: the order awaits exactly this payment, of its total;
            # paid, and its tax invoice issued.
            now = self._clock()
            paid = await move_order_from(
                uow, self._repository, outcome.order_token, "awaiting_payment", "paid", now=now, actor=ACTOR,
                reason=f"payment captured ({outcome.source or 'event'})",
                expected={"payment_token": outcome.payment_token, "payment_attempt": outcome.attempt,
                          "total": outcome.amount, "currency": outcome.currency},
                payment_patch=outcome.view().known(),  # = merged_view's update, done by the database
                invoice=None if self._documents is None else self._documents.invoice_to_issue(now),
                payment_token=outcome.payment_token, payment_attempt=outcome.attempt)
            if paid is not None:
                await uow.commit()
                return "paid"
            order = await self._locked(uow.conn, outcome.order_token)
            verdict, reason = capture_verdict(order.status, order.payment_token, outcome.payment_token, outcome.amount,
                                              outcome.currency, order.total, order.currency)
            if verdict == "duplicate":
                await uow.commit()  # nothing to write; a commit, not a rollback (common/uow.py says why)
                return "duplicate"
            now = self._clock()
            if verdict == "flag":
                if await self._repository.payment_flagged_before(uow.conn, order.order_token, outcome.payment_token):
                    await uow.commit()
                    return "duplicate"
                flag_payment(uow, order, payment_token=outcome.payment_token, reason=reason, now=now, actor=ACTOR,
                             captured={"amount": format_amount(outcome.amount), "currency": outcome.currency,
                                       "gateway": outcome.gateway, "gateway_payment_id": outcome.gateway_payment_id})
                await uow.commit()
                return "flagged"
            invoice_number = None  # issued first (the row is locked), so that the move's audit row has its number
            if self._documents is not None:
                invoice_number = await self._documents.issue_invoice(uow, order, now, audited=False)
            await move_order(uow, self._repository, order, "paid", now=now, actor=ACTOR,
                             reason=f"payment captured ({outcome.source or 'event'})", invoice_number=invoice_number,
                             payment_token=outcome.payment_token, payment_attempt=outcome.attempt,
                             payment=merged_view(order, outcome))
            await uow.commit()
            return "paid"

    async def captured_at_open(self, order: OrderRecord, session: PaymentView) -> Outcome:
        """A session OpenSession answered already captured (a free order, gateway `none`): paid now,
        as the checkout.payment.captured event that follows would (which then finds a duplicate)."""
        return await self.payment_captured(PaymentOutcome(
            order_token=order.order_token, payment_token=session.payment_token, attempt=1, status="captured",
            amount=parse_amount(session.amount), currency=session.currency, gateway=session.gateway,
            gateway_order_id=session.gateway_order_id, source="free", expires_at=session.expires_at,
            checkout_url=session.checkout_url))

    async def payment_failed(self, outcome: PaymentOutcome) -> Outcome:
        return await self._unpaid_outcome(outcome, may_move=True)

    async def payment_expired(self, outcome: PaymentOutcome) -> Outcome:
        return await self._unpaid_outcome(outcome, may_move=False)

    async def _unpaid_outcome(self, outcome: PaymentOutcome, *, may_move: bool) -> Outcome:
        """A session that ended without money: the view of the latest attempt follows it; a failure
        of that attempt makes the order payment_failed (a new attempt may follow). Events of older
        attempts, or for an order that no longer waits for money, change nothing."""
        async with self._uow() as uow:
            order = await self._locked(uow.conn, outcome.order_token)
            if order.status not in MAY_BE_PAID or not is_current_attempt(order.payment_attempt, outcome.attempt):
                await uow.commit()
                return "ignored"
            changes: dict[str, Any] = {"payment_token": outcome.payment_token, "payment_attempt": outcome.attempt,
                                       "payment": merged_view(order, outcome)}
            now = self._clock()
            if may_move and failure_moves_order(order.status, order.payment_attempt, outcome.attempt):
                await move_order(uow, self._repository, order, "payment_failed", now=now, actor=ACTOR,
                                 reason=f"payment attempt {outcome.attempt} failed ({outcome.source or 'event'})",
                                 **changes)
                await uow.commit()
                return "payment_failed"
            if all(getattr(order, name) == value for name, value in changes.items()):
                await uow.commit()
                return "duplicate"
            await self._repository.update_order(uow.conn, order.order_token, updated_at=now, **changes)
            await uow.commit()
            return "view_updated"

    async def refund_processed(self, refund: RefundProcessed) -> Outcome:
        """refunded_amount follows payment_svc's total (never down: events may come out of order),
        the refund's credit note is issued (once per refund), and a fully refunded paid or
        fulfilled order becomes `refunded` (checkout.order.refunded: enrollment_svc cancels its
        enrollments). A refund in another currency than the order's is flagged, nothing else."""
        async with self._uow() as uow:
            order = await self._locked(uow.conn, refund.order_token)
            now = self._clock()
            if refund.currency != order.currency:
                flag_payment(uow, order, payment_token=order.payment_token or "", now=now, actor=ACTOR,
                             reason=f"refund {refund.refund_id} in {refund.currency}, the order is in {order.currency}",
                             captured={"refund_id": refund.refund_id, "amount": format_amount(refund.amount),
                                       "currency": refund.currency})
                await uow.commit()
                return "flagged"
            if self._documents is not None:
                await self._documents.issue_credit_note(uow, order, refund.refund_id, refund.amount,
                                                        refund.reason or "refund", now)
            outcome: Outcome = "duplicate"
            total = max(order.refunded_amount, refund.refunded_amount)
            if refund.fully_refunded and order.status in REFUNDABLE:
                await move_order(uow, self._repository, order, "refunded", now=now, actor=ACTOR,
                                 reason=f"fully refunded (refund {refund.refund_id})", refunded_amount=total)
                outcome = "refunded"
            elif total != order.refunded_amount:
                await self._repository.update_order(uow.conn, order.order_token, refunded_amount=total, updated_at=now)
                uow.audit(actor=ACTOR, entity_type="order", entity_id=order.order_token, action="refunded_amount",
                          before={"refunded_amount": order.refunded_amount},
                          after={"refunded_amount": total, "refund_id": refund.refund_id})
                outcome = "refund_noted"
            await uow.commit()
            return outcome

    async def enrollments_created(self, order_token: str, enrollment_ids: Sequence[str]) -> Outcome:
        async with self._uow() as uow:
            moved = await move_order_from(uow, self._repository, order_token, "paid", "fulfilled", now=self._clock(),
                                          actor=ACTOR, reason="enrollments created",
                                          enrollment_ids=list(enrollment_ids))
            if moved is None:  # not paid: why not?
                order = await self._repository.get_order(uow.conn, order_token)
                if order is None:
                    raise RetryLater(f"order {order_token} not found (not there yet?)")
                if order.status in MAY_BE_PAID or order.status == "paid":  # paid: just now, after the UPDATE looked
                    raise RetryLater(f"order {order_token} is {order.status}: not paid yet")
                if order.status == "refunded":  # refunded before its enrollments came: enrollment_svc cancels them
                    await uow.commit()
                    return "ignored"
                if order.status != "fulfilled":
                    raise CannotHandle(f"order {order_token} is {order.status}: it cannot be fulfilled")
            await uow.commit()
            return "duplicate" if moved is None else "fulfilled"
