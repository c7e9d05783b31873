"""Refunds the gateway has not settled yet, asked about again (run beside the session reconciler,
at PAYMENT_RECONCILE_INTERVAL).

A refund stays `pending` while the gateway has not said `processed` or `failed`: its create got no
answer (timeout, 5xx, breaker open), or the gateway answered `pending` and its webhook never came.
Each pass takes the pending refunds whose `next_check_at` is due, oldest first, at most `batch`:
- no gateway refund id yet → create_refund again with the same key (our refund id: the gateway
  makes one refund per key, so a create that did land is answered, not repeated);
- otherwise → fetch_refund.
The answer is applied like any other (refund_settlement.apply_refund_report) in one short
transaction per refund, under its row lock; no transaction is open during the gateway call. A
refund still pending is checked again later, each time after twice as long as its age so far
(bounded: 1 minute to 1 hour), so an abandoned one costs a few calls a day, not one per pass.
"""

from __future__ import annotations

import datetime

from common.clock import utc_now
from common.uow import UnitOfWorkFactory, reading
from common.workers import Worker, periodic
from payment_svc.gateways.base import GatewayRejected, GatewayUnavailable
from payment_svc.refund_repository import RefundRecord, RefundRepository
from payment_svc.refunds import RefundService
from payment_svc.tuning import ReconcileTuning

MIN_WAIT = datetime.timedelta(minutes=1)
MAX_WAIT = datetime.timedelta(hours=1)


def next_check(created_at: datetime.datetime, now: datetime.datetime) -> datetime.datetime:
    return now + min(max(now - created_at, MIN_WAIT), MAX_WAIT)


class RefundReconciler:
    def __init__(self, uow: UnitOfWorkFactory, refunds: RefundRepository, service: RefundService, *,
                 batch: int) -> None:
        self._uow = uow
        self._refunds = refunds
        self._service = service
        self._batch = batch

    async def one_pass(self) -> dict[str, int]:
        async with reading(self._uow) as uow:
            due = await self._refunds.due_pending(uow.conn, utc_now(), self._batch)
        report = {"settled": 0, "pending": 0, "unavailable": 0}
        for refund in due:
            report[await self._check(refund)] += 1
        return report

    async def _check(self, refund: RefundRecord) -> str:
        if refund.gateway_refund_id is None:
            reported, refused = await self._service.ask_gateway(refund)
        else:
            gateway = self._service.gateway(refund.gateway)
            try:
                reported, refused = await gateway.fetch_refund(refund.gateway_refund_id), ""
            except GatewayRejected as error:
                reported, refused = None, error.message[:500] or "unknown to the gateway"
            except GatewayUnavailable:
                reported, refused = None, ""
        async with self._uow() as uow:
            current = await self._refunds.by_id(uow.conn, refund.refund_id, for_update=True)
            if current is None or current.status != "pending":
                await uow.commit()
                return "settled"
            if reported is None and not refused:
                await self._refunds.update(uow.conn, current.refund_id, next_check_at=next_check(current.created_at, utc_now()))
                await uow.commit()
                return "unavailable"
            current = await self._service.apply_answer(uow, current, reported, refused, source="reconcile")
            if current.status == "pending":
                current = await self._refunds.update(uow.conn, current.refund_id,
                                                     next_check_at=next_check(current.created_at, utc_now()))
            await uow.commit()
        return "settled" if current.status != "pending" else "pending"


def refund_reconciler_worker(reconciler: RefundReconciler, tuning: ReconcileTuning) -> Worker:
    return periodic("payment-refund-reconciler", tuning.interval_s or 60.0, reconciler.one_pass)
