"""Reconciliation: ask the gateway about sessions whose outcome never reached us.

Webhooks get lost (the gateway gives up, our endpoint was down for longer than its retries, an
event was dropped on the way), and browsers close before the callback. So a session still
`pending` PAYMENT_RECONCILE_AFTER seconds after it was opened is looked up at its gateway, and
whatever the gateway says is applied through apply_payment_outcome(source="reconcile"): the
same forward-only code path as webhooks and the callback, so a lost webhook still ends in a
capture (and, through the outbox, an enrollment), and a reconcile racing a late webhook changes
state once. Sessions the sweeper expired in the last PAYMENT_RECONCILE_EXPIRED_GRACE seconds are
looked up too: a payment made in the last moments of a session still counts (expired → captured).

  Razorpay  GET /v1/orders/{id}/payments: every captured payment is applied, oldest first (a
            second one is flagged for a refund by apply_payment_outcome); with none, the newest
            payment if it failed.
  Stripe    GET /v1/payment_intents/{id}: succeeded → captured (amount_received), canceled or a
            last_payment_error → failed; anything else → still pending, nothing changes.

Each session keeps its next look-up (`next_check_at`, domain/reconcile_schedule.py): after a
look-up the next is PAYMENT_RECONCILE_BACKOFF later, then twice as long each time (with jitter),
at most PAYMENT_RECONCILE_MAX_DELAY apart; a pass skips sessions not due (`--payment-token`
looks the named ones up whatever their schedule).

Several reconcilers may run at once (every payment_svc process runs one; the CLI may run beside
them). Each session is claimed by a lease on its row (`leased_until`, one short committed
UPDATE that also re-reads it; a session leased elsewhere or settled meanwhile is skipped, never
waited for). No connection is held and no transaction is open during the gateway call; the
outcome, the next look-up and the end of the lease are written in one short transaction
afterwards (a reconciler that dies leaves a lease that runs out). Each pass is bounded: at most
PAYMENT_RECONCILE_MAX sessions, PAYMENT_RECONCILE_BATCH per query, and every gateway call is
bounded by the adapters' time budget, retries and circuit breaker (gateways/resilient.py).

    python -m payment_svc.workers.reconciler --once [--after S] [--payment-token T ...]   one pass, JSON report
    python -m payment_svc.workers.reconciler                                             forever
`python -m payment_svc` runs it as a worker (payment_svc/app.py).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime
import json
import logging
import sys
import time
import uuid
from collections.abc import Callable, Collection, Mapping
from typing import Any

from common.clock import utc_now
from common.request_context import correlation_id_var, new_correlation_id
from common.uow import UnitOfWork, UnitOfWorkFactory
from common.workers import Worker, periodic
from payment_svc.domain.reconcile_schedule import next_check_at
from payment_svc.gateways.base import GatewayPayment, GatewayRejected, GatewayUnavailable
from payment_svc.gateways.resilient import ResilientGateway
from payment_svc.metrics import RECONCILE_PASS_SECONDS, RECONCILE_PASSES, RECONCILED
from payment_svc.outcomes import GatewayReport, OutcomeResult, apply_payment_outcome
from payment_svc.repository import PaymentRecord, PaymentRepository
from payment_svc.tuning import ReconcileTuning

ACTOR = "payment_svc.reconcile"
CLAIM_LEASE = datetime.timedelta(seconds=60)  # past any look-up's budget, retries and fallback included
_log = logging.getLogger(__name__)


@dataclasses.dataclass
class ReconcileReport:
    checked: int = 0  # sessions claimed and looked up at their gateway
    captured: int = 0
    failed: int = 0
    flagged: int = 0  # money we will not apply (amount mismatch, second capture)
    unchanged: int = 0  # the gateway has nothing new (still pending, or already applied)
    unavailable: int = 0  # the gateway could not be reached: the next pass tries again
    rejected: int = 0  # the gateway refused the lookup (unknown order)
    skipped: int = 0  # claimed by another reconciler, or settled before we got to it
    errors: int = 0  # our own failure on one session (logged); the pass goes on with the next


class Reconciler:
    def __init__(self, uow: UnitOfWorkFactory, repository: PaymentRepository,
                 gateways: Mapping[str, ResilientGateway], tuning: ReconcileTuning = ReconcileTuning(),
                 clock: Callable[[], datetime.datetime] = utc_now) -> None:
        self._uow = uow
        self._repository = repository
        self._gateways = gateways
        self._tuning = tuning
        self._clock = clock

    async def reconcile_once(self, *, now: datetime.datetime | None = None,
                             only: Collection[str] | None = None) -> ReconcileReport:
        """One pass over the sessions due for a look-up (`only`: just these payment tokens)."""
        now = now or self._clock()
        tuning = self._tuning
        report = ReconcileReport()
        cursor: tuple[datetime.datetime, str] | None = None
        seen = 0
        while seen < tuning.max_sessions:
            limit = min(tuning.batch, tuning.max_sessions - seen)
            async with self._uow() as uow:
                due = await self._repository.due_for_reconcile(
                    uow.conn, now=now, pending_before=now - datetime.timedelta(seconds=tuning.after_s),
                    expired_after=now - datetime.timedelta(seconds=tuning.expired_grace_s),
                    gateways=list(self._gateways), cursor=cursor, limit=limit, only=only)
            for _created_at, token, gateway in due:
                await self._reconcile_session(token, gateway, report)
            seen += len(due)
            if len(due) < limit:
                break
            cursor = due[-1][:2]
        return report

    async def one_pass(self) -> None:
        """A pass as the worker runs it: its own correlation id, metrics, a log line if it did anything."""
        correlation_id_var.set(new_correlation_id())
        started = time.perf_counter()
        try:
            report = await self.reconcile_once()
        except Exception:
            RECONCILE_PASSES.labels("error").inc()
            raise
        finally:
            RECONCILE_PASS_SECONDS.observe(time.perf_counter() - started)
        RECONCILE_PASSES.labels("ok").inc()
        if report != ReconcileReport():
            _log.info("reconcile pass", extra=dataclasses.asdict(report))

    async def _reconcile_session(self, token: str, gateway: str, report: ReconcileReport) -> None:
        now = self._clock()  # leases and the schedule run on the clock, not on the pass's start
        try:
            async with self._uow() as uow:
                session = await self._repository.claim_check(uow.conn, token, now, now + CLAIM_LEASE)
                await uow.commit()
            if session is None:  # leased by another reconciler, or settled meanwhile
                _tally(report, gateway, "skipped")
                return
            _tally(report, gateway, await self._look_up_and_apply(self._gateways[gateway], session, now))
        except Exception:  # one session's trouble must not stop the pass; its lease runs out
            RECONCILED.labels(gateway, "error").inc()
            report.errors += 1
            _log.exception("reconcile: failed on one session; it is tried again once its lease runs out",
                           extra={"gateway": gateway, "payment_token": token})

    async def _schedule_next(self, session: PaymentRecord, now: datetime.datetime, uow: UnitOfWork | None = None) -> None:
        """The lease ends; the next look-up is scheduled by the backoff (in `uow`, or a transaction of its own)."""
        checks = session.reconcile_checks + 1
        at = next_check_at(now, checks, first_s=self._tuning.backoff_s,
                           cap_s=self._tuning.max_delay_s)
        if uow is not None:
            await self._repository.finish_check(uow.conn, session.token, next_check_at=at, checks=checks)
            return
        async with self._uow() as own:
            await self._repository.finish_check(own.conn, session.token, next_check_at=at, checks=checks)
            await own.commit()

    async def _look_up_and_apply(self, gateway: ResilientGateway, session: PaymentRecord,
                                 now: datetime.datetime) -> str:
        order_id = session.gateway_order_id
        assert order_id is not None
        news: list[GatewayPayment] = []
        try:
            news = what_to_apply(order_id, await gateway.fetch_order_payments(order_id))
        except GatewayUnavailable as error:
            _log.warning("reconcile: gateway unavailable; the next look-up tries again",
                         extra={"gateway": session.gateway, "payment_token": session.token, "error": str(error)})
            await self._schedule_next(session, now)
            return "unavailable"
        except GatewayRejected as error:
            _log.warning("reconcile: the gateway refused the look-up",
                         extra={"gateway": session.gateway, "payment_token": session.token, "error": str(error)})
            await self._schedule_next(session, now)
            return "rejected"
        if not news:
            await self._schedule_next(session, now)
            return "unchanged"
        results: list[OutcomeResult] = []
        async with self._uow() as uow:
            await self._schedule_next(session, now, uow)
            for payment in news:
                results.append(await apply_payment_outcome(
                    uow, self._repository, GatewayReport(session.gateway, order_id, payment.id, payment.status,
                                                         payment.amount_minor, payment.currency),
                    source="reconcile", actor=ACTOR))
            await uow.commit()
        kinds = [r.kind for r in results]
        _log.info("reconciled", extra={"gateway": session.gateway, "payment_token": session.token, "outcomes": kinds})
        if any(r.flagged for r in results):
            return "flagged"
        if "captured" in kinds:
            return "captured"
        if "failed" in kinds:
            return "failed"
        return "unchanged"


def _tally(report: ReconcileReport, gateway: str, result: str) -> None:
    setattr(report, result, getattr(report, result) + 1)
    if result not in ("unavailable", "rejected", "skipped"):
        report.checked += 1
    RECONCILED.labels(gateway, result).inc()


def what_to_apply(gateway_order_id: str, payments: list[GatewayPayment]) -> list[GatewayPayment]:
    """The gateway's payments of one order (newest first) → the reports to apply, in order: every
    capture, oldest first; with none, the newest payment if it failed (a failure followed by a
    payment still in progress is not news yet)."""
    ours = [p for p in payments if p.order_id in ("", gateway_order_id)]
    captured = [p for p in reversed(ours) if p.status == "captured"]
    if captured:
        return captured
    if ours and ours[0].status == "failed":
        return [ours[0]]
    return []


def reconciler_worker(reconciler: Reconciler, tuning: ReconcileTuning) -> Worker:
    return periodic("payment-reconciler", tuning.interval_s or 60.0, reconciler.one_pass)


def main(argv: list[str] | None = None) -> int:
    from common.db import create_engine
    from common.logs import configure_logging
    from common.settings import process_settings
    from common.uow import uow_factory
    from payment_svc.gateways.registry import build_gateways
    from payment_svc.tables import PLUMBING

    parser = argparse.ArgumentParser(prog="python -m payment_svc.workers.reconciler",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--once", action="store_true", help="one pass, then exit (print the report as JSON)")
    parser.add_argument("--after", type=float, help="seconds after opening a pending session is due "
                                                    "(default PAYMENT_RECONCILE_AFTER)")
    parser.add_argument("--interval", type=float, help="seconds between passes (default PAYMENT_RECONCILE_INTERVAL)")
    parser.add_argument("--batch", type=int, help="sessions per query (default PAYMENT_RECONCILE_BATCH)")
    parser.add_argument("--payment-token", action="append", dest="tokens", metavar="TOKEN",
                        help="only this session (repeatable)")
    args = parser.parse_args(argv)
    for token in args.tokens or ():
        try:
            uuid.UUID(token)
        except ValueError:
            parser.error(f"--payment-token {token!r} is not a payment token (a UUID)")
    settings = process_settings()
    configure_logging("payment_reconcile", settings.log_level)
    changes: dict[str, Any] = {}
    if args.after is not None:
        changes["after_s"] = args.after
    if args.interval:
        changes["interval_s"] = args.interval
    if args.batch:
        changes["batch"] = max(1, args.batch)
    tuning = dataclasses.replace(ReconcileTuning.from_settings(settings), **changes)

    async def run() -> None:
        engine = create_engine(settings, "payment", pool_size=2)
        gateways = build_gateways(settings)
        reconciler = Reconciler(uow_factory(engine, PLUMBING), PaymentRepository(), gateways, tuning)
        try:
            if args.once:
                correlation_id_var.set(new_correlation_id())
                report = await reconciler.reconcile_once(only=args.tokens)
                print(json.dumps(dataclasses.asdict(report)), flush=True)
            else:
                worker = reconciler_worker(reconciler, tuning).start()
                assert worker.task is not None
                await worker.task  # until interrupted
        finally:
            await gateways.close()
            await engine.dispose()

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
