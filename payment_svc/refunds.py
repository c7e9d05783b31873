"""Refunds by admins (CONTRACT.md Additions "Refunds (admin)"): CreateRefund and ListRefunds.

CreateRefund, in three steps, no connection held across the gateway call:
  1. one transaction: lock the order's captured session (SELECT … FOR UPDATE; none → 3302), sum its
     refunds that are not failed, refuse with 3301 what would pass the captured amount, insert the
     refund `pending` (+ audit `refund:requested`), commit. Concurrent requests for one order queue
     on that row lock, so each sees every refund committed before it: never over-refunded.
  2. the gateway's create_refund, keyed by our refund id (the gateway makes one refund per key).
  3. one transaction: the gateway's answer applied by refund_settlement.apply_refund_report (a
     definite refusal → `failed`, which frees the amount; no answer → stays `pending` and the refund
     reconciler asks again later), the answer stored on the row for the Idempotency-Key, commit.

Idempotency-Key (optional): kept on the refund with the request's fingerprint (order, amount,
reason). The same key and body replay the stored answer; a refund whose first request stopped
between steps 1 and 3 is carried on by the replay (step 2 again, same gateway key). The same key
with another body → 2005. A request refused (1000, 3301, 3302) stores nothing: the same key may be
sent again once the refusal no longer holds.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy.exc import IntegrityError

from common.clock import parse_rfc3339, rfc3339, utc_now
from common.errors import CheckoutError, ErrorCode
from common.money import ZERO, format_amount, parse_amount, to_minor_units
from common.request_context import Caller
from common.uow import UnitOfWorkFactory, reading
from common.validation import check_text, check_uuid, raise_if_any
from payment_svc.domain.refunds import MAX_REASON, amount_to_refund, check_amount, request_fingerprint
from payment_svc.gateways.base import GatewayRefund, GatewayRejected, GatewayUnavailable
from payment_svc.gateways.registry import Gateways
from payment_svc.gateways.resilient import ResilientGateway
from payment_svc.metrics import REFUNDS
from payment_svc.refund_repository import RefundRecord, RefundRepository
from payment_svc.refund_settlement import RefundReport, apply_refund_report
from payment_svc.repository import PaymentRepository

MAX_KEY = 255
RECHECK_AFTER = datetime.timedelta(seconds=60)  # a refund the gateway did not confirm: ask again then
_log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class RefundView:
    refund_id: str
    order_token: str
    amount: Decimal
    currency: str
    status: str
    gateway: str
    gateway_refund_id: str
    reason: str
    created_at: datetime.datetime

    @classmethod
    def of(cls, refund: RefundRecord) -> RefundView:
        return cls(refund.refund_id, refund.order_token, refund.amount, refund.currency, refund.status,
                   refund.gateway, refund.gateway_refund_id or "", refund.reason, refund.created_at)

    def as_json(self) -> dict[str, Any]:
        return {"refund_id": self.refund_id, "order_token": self.order_token, "amount": format_amount(self.amount),
                "currency": self.currency, "status": self.status, "gateway": self.gateway,
                "gateway_refund_id": self.gateway_refund_id, "reason": self.reason,
                "created_at": rfc3339(self.created_at)}

    @classmethod
    def from_json(cls, stored: dict[str, Any]) -> RefundView:
        return cls(stored["refund_id"], stored["order_token"], parse_amount(stored["amount"]), stored["currency"],
                   stored["status"], stored["gateway"], stored["gateway_refund_id"], stored["reason"],
                   parse_rfc3339(stored["created_at"]))


class RefundService:
    def __init__(self, uow: UnitOfWorkFactory, refunds: RefundRepository, payments: PaymentRepository,
                 gateways: Gateways) -> None:
        self._uow = uow
        self._refunds = refunds
        self._payments = payments
        self._gateways = gateways

    def gateway(self, name: str) -> ResilientGateway:
        return self._gateways[name]

    async def list_refunds(self, order_token: str) -> list[RefundView]:
        problems: list[str] = []
        check_uuid(problems, "order_token", order_token)
        raise_if_any(problems)
        async with reading(self._uow) as uow:
            return [RefundView.of(refund) for refund in await self._refunds.of_order(uow.conn, order_token)]

    async def create_refund(self, admin: Caller, order_token: str, amount_text: str, reason: str,
                            key: str) -> RefundView:
        problems: list[str] = []
        check_uuid(problems, "order_token", order_token)
        requested = check_amount(problems, amount_text)
        check_text(problems, "reason", reason, MAX_REASON)
        if key and (len(key) > MAX_KEY or not key.isprintable()):
            problems.append(f"Idempotency-Key: 1-{MAX_KEY} printable characters")
        raise_if_any(problems)
        fingerprint = request_fingerprint(order_token, "" if requested is None else format_amount(requested), reason)
        if key:
            async with reading(self._uow) as uow:
                existing = await self._refunds.by_key(uow.conn, key)
            if existing is not None:
                return await self._replay(existing, fingerprint)
        try:
            refund = await self._reserve(admin, order_token, requested, reason, key or None, fingerprint)
        except IntegrityError:  # the same key, taken at this moment by a request for another order
            async with reading(self._uow) as uow:
                existing = await self._refunds.by_key(uow.conn, key)
            if existing is None:
                raise
            return await self._replay(existing, fingerprint)
        if refund.response is not None:  # the key's refund, made and answered by another request
            return RefundView.from_json(refund.response)
        return await self._submit(refund)

    async def _reserve(self, admin: Caller, order_token: str, requested: Decimal | None, reason: str,
                       key: str | None, fingerprint: str) -> RefundRecord:
        """Step 1: the refund, pending, its amount held; or 3302 / 3301. With a key another
        request of this order took while this one waited for the lock: that refund."""
        async with self._uow() as uow:
            session = await self._refunds.lock_captured_session(uow.conn, order_token)
            if session is None or session.amount <= ZERO or not session.gateway_payment_id:
                raise CheckoutError(ErrorCode.NOTHING_TO_REFUND,
                                    "this order has no captured payment to refund (unknown, unpaid or free order)")
            if key is not None and (taken := await self._refunds.by_key(uow.conn, key)) is not None:
                await uow.commit()
                if taken.request_hash != fingerprint:
                    raise CheckoutError(ErrorCode.IDEMPOTENCY_KEY_REUSED)
                return taken
            totals = await self._refunds.totals(uow.conn, session.token)
            amount = amount_to_refund(requested, session.amount, totals.held, session.currency)
            now = utc_now()
            refund = await self._refunds.insert(
                uow.conn, refund_id=str(uuid.uuid4()), order_token=order_token, payment_token=session.token,
                gateway=session.gateway, gateway_payment_id=session.gateway_payment_id, amount=amount,
                currency=session.currency, status="pending", reason=reason, origin="api", requested_by=admin.user_id,
                idempotency_key=key, request_hash=fingerprint, next_check_at=now + RECHECK_AFTER,
                created_at=now, updated_at=now)
            uow.audit(actor=admin.user_id, entity_type="refund", entity_id=refund.refund_id, action="refund:requested",
                      before={"captured": session.amount, "refunded_or_pending": totals.held},
                      after={"order_token": order_token, "payment_token": session.token, "amount": amount,
                             "currency": session.currency, "gateway": session.gateway, "reason": reason,
                             "default_amount": requested is None, "idempotency_key": key})
            await uow.commit()
        REFUNDS.labels(refund.gateway, "requested").inc()
        return refund

    async def _replay(self, existing: RefundRecord, fingerprint: str) -> RefundView:
        if existing.request_hash != fingerprint:
            raise CheckoutError(ErrorCode.IDEMPOTENCY_KEY_REUSED)
        if existing.response is not None:
            return RefundView.from_json(existing.response)
        return await self._submit(existing)  # the first request stopped before its answer: carry it on

    async def _submit(self, refund: RefundRecord) -> RefundView:
        """Steps 2 and 3. Public for the refund reconciler, which carries on unanswered creates."""
        reported, refused = await self.ask_gateway(refund)
        async with self._uow() as uow:
            current = await self._refunds.by_id(uow.conn, refund.refund_id, for_update=True)
            assert current is not None
            current = await self.apply_answer(uow, current, reported, refused, source="create")
            if current.idempotency_key is not None and current.response is None:
                current = await self._refunds.update(uow.conn, current.refund_id,
                                                     response=RefundView.of(current).as_json())
            await uow.commit()
        return RefundView.from_json(current.response) if current.response is not None else RefundView.of(current)

    async def ask_gateway(self, refund: RefundRecord) -> tuple[GatewayRefund | None, str]:
        """The gateway's answer to our create (None, "" when it could not be reached; None and the
        reason when it refused)."""
        gateway = self._gateways[refund.gateway]
        try:
            return await gateway.create_refund(refund.gateway_payment_id, to_minor_units(refund.amount),
                                               refund.refund_id, {"refund_id": refund.refund_id,
                                                                  "order_token": refund.order_token}), ""
        except GatewayRejected as error:
            return None, error.message[:500] or "refused by the gateway"
        except GatewayUnavailable as error:
            _log.warning("refund not confirmed by the gateway; the refund reconciler will ask again",
                         extra={"refund_id": refund.refund_id, "gateway": refund.gateway, "error": error.message})
            return None, ""

    async def apply_answer(self, uow: Any, refund: RefundRecord, reported: GatewayRefund | None, refused: str, *,
                           source: str) -> RefundRecord:
        now = utc_now()
        if reported is not None:
            result = await apply_refund_report(
                uow, self._refunds, self._payments,
                RefundReport(refund.gateway, reported.id, reported.payment_id or refund.gateway_payment_id,
                             reported.status, reported.amount_minor, reported.currency, refund.refund_id),
                source="create" if source == "create" else "reconcile", actor=f"gateway:{refund.gateway}",
                now=now, refund=refund)
            return result.refund or refund
        if refused:
            result = await apply_refund_report(
                uow, self._refunds, self._payments,
                RefundReport(refund.gateway, refund.gateway_refund_id or "", refund.gateway_payment_id, "failed",
                             to_minor_units(refund.amount), refund.currency, refund.refund_id, refused),
                source="create" if source == "create" else "reconcile", actor=f"gateway:{refund.gateway}",
                now=now, refund=refund)
            return result.refund or refund
        REFUNDS.labels(refund.gateway, "unconfirmed").inc()
        uow.audit(actor=f"gateway:{refund.gateway}", entity_type="refund", entity_id=refund.refund_id,
                  action="refund:gateway_unavailable", before={"status": refund.status},
                  after={"status": refund.status, "next_check_at": now + RECHECK_AFTER, "source": source})
        return await self._refunds.update(uow.conn, refund.refund_id, next_check_at=now + RECHECK_AFTER, updated_at=now)
