"""The payment sweeper: what time alone decides.

  - pending payment sessions past expires_at → expired (the payment state only moves forward:
    a capture that arrives later still wins, see domain/payment_status.py)
  - orders past orders.expires_at that were never paid (pending, awaiting_payment,
    payment_failed) → expired through the order state machine, and their coupon redemption
    released in the same transaction, so the coupon's limit counts only orders that can still pay

Each batch is one transaction over rows locked FOR UPDATE SKIP LOCKED: several sweepers (or a
sweeper and a webhook holding a row) never wait on each other or touch a row twice. Every change
gets an audit row and an outbox event.

    python -m payment_svc.sweeper --once      one pass, prints what it did as JSON
    python -m payment_svc.sweeper             forever, every PAYMENT_SWEEP_INTERVAL seconds
The payment service also runs it in the background (payment_svc/app.py).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime
import json
import logging
import sys

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from cart_svc import redemptions
from common.audit import append_audit
from common.clock import rfc3339, utc_now
from common.outbox import add_event
from order_svc.order_repository import OrderRecord
from payment_svc import order_queries, payment_repository
from payment_svc.order_moves import move_order
from payment_svc.payment_repository import PaymentRecord

ACTOR = "payment_svc.sweeper"
MAX_BATCHES_PER_PASS = 1000  # a pass always ends, even if rows keep coming
_log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class SweepReport:
    sessions_expired: int = 0
    orders_expired: int = 0
    coupons_released: int = 0


async def sweep_once(engine: AsyncEngine, *, now: datetime.datetime | None = None, batch: int = 100) -> SweepReport:
    now = now or utc_now()
    sessions = orders = released = 0
    for _ in range(MAX_BATCHES_PER_PASS):
        async with engine.begin() as conn:
            done = await _expire_sessions(conn, now, batch)
        sessions += done
        if done < batch:
            break
    for _ in range(MAX_BATCHES_PER_PASS):
        async with engine.begin() as conn:
            done, freed = await _expire_orders(conn, now, batch)
        orders, released = orders + done, released + freed
        if done < batch:
            break
    return SweepReport(sessions, orders, released)


async def _expire_sessions(conn: AsyncConnection, now: datetime.datetime, batch: int) -> int:
    sessions = await payment_repository.lock_overdue_pending(conn, now, batch)
    for session in sessions:
        await _expire_session(conn, session, now)
    return len(sessions)


async def _expire_session(conn: AsyncConnection, session: PaymentRecord, now: datetime.datetime) -> None:
    await payment_repository.set_status(conn, session.token, "expired", now)
    await append_audit(conn, actor=ACTOR, entity_type="payment", entity_id=session.token, action="status:expired",
                       before={"status": session.status}, after={"status": "expired",
                                                                 "expires_at": rfc3339(session.expires_at)})
    await add_event(conn, subject="checkout.payment.expired", aggregate_id=session.order_token,
                    payload={"order_token": session.order_token, "payment_token": session.token,
                             "gateway": session.gateway, "gateway_order_id": session.gateway_order_id or ""})


async def _expire_orders(conn: AsyncConnection, now: datetime.datetime, batch: int) -> tuple[int, int]:
    overdue = await order_queries.lock_overdue_unpaid(conn, now, batch)
    released = 0
    for order in overdue:
        released += await _expire_order(conn, order, now)
    return len(overdue), released


async def _expire_order(conn: AsyncConnection, order: OrderRecord, now: datetime.datetime) -> int:
    await move_order(conn, order, "expired", actor=ACTOR, now=now, reason="not paid before the order expired")
    return 1 if await redemptions.release(conn, order_token=order.order_token) else 0


async def run_sweeper(engine: AsyncEngine, *, interval_s: float, batch: int, stop: asyncio.Event | None = None) -> None:
    """Sweep every `interval_s` until `stop` is set (or the task is cancelled); a failed pass is
    logged and the next one tries again."""
    stop = stop or asyncio.Event()
    while not stop.is_set():
        try:
            report = await sweep_once(engine, batch=batch)
            if report != SweepReport():
                _log.info("swept", extra=dataclasses.asdict(report))
        except asyncio.CancelledError:
            raise
        except Exception:
            _log.exception("sweep failed; retrying next interval")
        try:
            await asyncio.wait_for(stop.wait(), interval_s)
        except TimeoutError:
            pass


def main(argv: list[str] | None = None) -> int:
    from common.config import load_settings
    from common.db import create_engine
    from common.logs import configure_logging
    from payment_svc.settings import load_payment_settings

    parser = argparse.ArgumentParser(prog="python -m payment_svc.sweeper", description=__doc__.split("\n\n")[0])
    parser.add_argument("--once", action="store_true", help="one pass, then exit (print the report as JSON)")
    parser.add_argument("--interval", type=float, help="seconds between passes (default PAYMENT_SWEEP_INTERVAL)")
    parser.add_argument("--batch", type=int, help="rows per transaction (default PAYMENT_SWEEP_BATCH)")
    args = parser.parse_args(argv)
    settings, payment = load_settings(), load_payment_settings()
    configure_logging("payment_sweeper", settings.log_level)
    batch = args.batch or payment.sweep_batch

    async def run() -> None:
        engine = create_engine(settings, pool_size=2)
        try:
            if args.once:
                print(json.dumps(dataclasses.asdict(await sweep_once(engine, batch=batch))))
            else:
                await run_sweeper(engine, interval_s=args.interval or payment.sweep_interval_s or 30.0, batch=batch)
        finally:
            await engine.dispose()

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
