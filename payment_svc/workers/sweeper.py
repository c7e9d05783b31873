"""The session-expiry sweeper: pending payment sessions past their `expires_at` become `expired`.

A session's status only moves forward: a capture that arrives later still wins (expired →
captured, domain/payment_status.py). Orders are not touched: an order's own expiry is order_svc's
(it hears `checkout.payment.expired` and decides what the order does).

Each batch is one unit of work over rows locked FOR UPDATE SKIP LOCKED: several sweepers (or a
sweeper and a webhook holding a row) never wait on each other or touch a row twice. Each expired
session gets one audit row and one `checkout.payment.expired` event (source `sweeper`).

    python -m payment_svc.workers.sweeper --once      one pass, prints what it did as JSON
    python -m payment_svc.workers.sweeper             forever, every PAYMENT_SWEEP_INTERVAL seconds
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

from common.clock import rfc3339, utc_now
from common.uow import UnitOfWorkFactory
from common.workers import Worker, periodic
from payment_svc import payment_events
from payment_svc.repository import PaymentRepository
from payment_svc.tuning import SweepTuning

ACTOR = "payment_svc.sweeper"
MAX_BATCHES_PER_PASS = 1000  # a pass always ends, even if rows keep coming
_log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class SweepReport:
    sessions_expired: int = 0


class SessionSweeper:
    def __init__(self, uow: UnitOfWorkFactory, repository: PaymentRepository, *, batch: int = 100) -> None:
        self._uow = uow
        self._repository = repository
        self._batch = batch

    async def sweep_once(self, *, now: datetime.datetime | None = None) -> SweepReport:
        now = now or utc_now()
        expired = 0
        for _ in range(MAX_BATCHES_PER_PASS):
            done = await self._expire_batch(now)
            expired += done
            if done < self._batch:
                break
        report = SweepReport(expired)
        if report != SweepReport():
            _log.info("swept", extra=dataclasses.asdict(report))
        return report

    async def _expire_batch(self, now: datetime.datetime) -> int:
        async with self._uow() as uow:
            sessions = await self._repository.lock_overdue_pending(uow.conn, now, self._batch)
            for session in sessions:
                expired = await self._repository.set_status(uow.conn, session.token, "expired", now)
                uow.audit(actor=ACTOR, entity_type="payment", entity_id=session.token, action="status:expired",
                          before={"status": session.status},
                          after={"status": "expired", "expires_at": rfc3339(session.expires_at)})
                payment_events.publish_payment_event(uow, payment_events.EXPIRED, expired, now, source="sweeper")
            await uow.commit()
            return len(sessions)


def sweeper_worker(sweeper: SessionSweeper, tuning: SweepTuning) -> Worker:
    return periodic("payment-session-sweeper", tuning.interval_s, sweeper.sweep_once)


def main(argv: list[str] | None = None) -> int:
    from common.db import create_engine
    from common.logs import configure_logging
    from common.settings import process_settings
    from common.uow import uow_factory
    from payment_svc.tables import PLUMBING

    parser = argparse.ArgumentParser(prog="python -m payment_svc.workers.sweeper", description=__doc__.split("\n\n")[0])
    parser.add_argument("--once", action="store_true", help="one pass, then exit (print the report as JSON)")
    parser.add_argument("--interval", type=float, help="seconds between passes (default PAYMENT_SWEEP_INTERVAL)")
    parser.add_argument("--batch", type=int, help="rows per transaction (default PAYMENT_SWEEP_BATCH)")
    args = parser.parse_args(argv)
    settings = process_settings()
    configure_logging("payment_sweeper", settings.log_level)
    tuning = SweepTuning.from_settings(settings)

    async def run() -> None:
        engine = create_engine(settings, "payment", pool_size=2)
        sweeper = SessionSweeper(uow_factory(engine, PLUMBING), PaymentRepository(), batch=args.batch or tuning.batch)
        try:
            if args.once:
                print(json.dumps(dataclasses.asdict(await sweeper.sweep_once())), flush=True)
                return
            worker = periodic("payment-session-sweeper", args.interval or tuning.interval_s or 30.0,
                              sweeper.sweep_once).start()
            assert worker.task is not None
            await worker.task  # until interrupted
        finally:
            await engine.dispose()

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
