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

Several reconcilers may run at once (every payment_svc process runs one; the CLI may run beside
them). Each session is claimed with a session-level PostgreSQL advisory lock
(pg_try_advisory_lock; a session claimed elsewhere is skipped, never waited for) on the
reconciler's own connection, and re-read after the claim, so a session another reconciler has
just settled is not asked about again. No transaction is open during the gateway call; the
outcome is applied in one short transaction afterwards. Each pass is bounded: at most
PAYMENT_RECONCILE_MAX sessions, PAYMENT_RECONCILE_BATCH per query, and every gateway call is
bounded by the adapters' time budget, retries and circuit breaker (gateways/resilient.py).

    python -m payment_svc.reconcile --once [--after S] [--payment-token T ...]   one pass, JSON report
    python -m payment_svc.reconcile                                             forever
The payment service also runs it in the background (payment_svc/app.py).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime
import hashlib
import json
import logging
import struct
import sys
import time
import uuid
from collections.abc import Collection, Mapping
from typing import Any

import prometheus_client
from sqlalchemy import and_, literal, or_, select, text, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from common.clock import utc_now
from common.config import env_number
from common.request_context import correlation_id_var, new_correlation_id
from common.tables import payment_tokens
from payment_svc import payment_repository
from payment_svc.gateways.base import GatewayPayment, GatewayRejected, GatewayUnavailable
from payment_svc.gateways.resilient import ResilientGateway
from payment_svc.outcomes import OutcomeResult, apply_payment_outcome
from payment_svc.payment_repository import PaymentRecord

ACTOR = "payment_svc.reconcile"
_log = logging.getLogger(__name__)

RECONCILED = prometheus_client.Counter(
    "checkout_reconcile_sessions_total", "Sessions looked at by the reconciler, by gateway and result",
    # captured, failed, flagged, unchanged (gateway: still pending / nothing new), unavailable,
    # rejected (the gateway does not know the order), skipped (claimed elsewhere or settled meanwhile)
    ["gateway", "result"],
)
PASSES = prometheus_client.Counter("checkout_reconcile_passes_total", "Reconciliation passes, by outcome (ok, error)",
                                   ["outcome"])
PASS_SECONDS = prometheus_client.Histogram("checkout_reconcile_pass_seconds", "Reconciliation pass time",
                                           buckets=(0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120))


def _number(name: str, default: float, *, minimum: float = 0.0) -> float:
    return env_number(name, default, minimum=minimum)


@dataclasses.dataclass(frozen=True)
class ReconcileSettings:
    after_s: float = 120.0  # PAYMENT_RECONCILE_AFTER: a pending session this old (since opening) is looked up
    interval_s: float = 60.0  # PAYMENT_RECONCILE_INTERVAL: between passes (0: no reconciler inside the service)
    batch: int = 50  # PAYMENT_RECONCILE_BATCH: sessions per query
    max_sessions: int = 2000  # PAYMENT_RECONCILE_MAX: sessions per pass (a pass always ends)
    expired_grace_s: float = 900.0  # PAYMENT_RECONCILE_EXPIRED_GRACE: expired sessions are looked up this long


def load_reconcile_settings() -> ReconcileSettings:
    return ReconcileSettings(
        after_s=_number("PAYMENT_RECONCILE_AFTER", 120.0),
        interval_s=_number("PAYMENT_RECONCILE_INTERVAL", 60.0),
        batch=int(_number("PAYMENT_RECONCILE_BATCH", 50, minimum=1)),
        max_sessions=int(_number("PAYMENT_RECONCILE_MAX", 2000, minimum=1)),
        expired_grace_s=_number("PAYMENT_RECONCILE_EXPIRED_GRACE", 900.0),
    )


@dataclasses.dataclass
class ReconcileReport:
    checked: int = 0  # sessions claimed and looked up at their gateway
    captured: int = 0
    failed: int = 0
    flagged: int = 0  # money we will not fulfil (amount mismatch, second capture, unpayable order)
    unchanged: int = 0  # the gateway has nothing new (still pending, or already applied)
    unavailable: int = 0  # the gateway could not be reached: the next pass tries again
    rejected: int = 0  # the gateway refused the lookup (unknown order)
    skipped: int = 0  # claimed by another reconciler, or settled before we got to it
    errors: int = 0  # our own failure on one session (logged); the pass goes on with the next


async def reconcile_once(engine: AsyncEngine, gateways: Mapping[str, ResilientGateway],
                         settings: ReconcileSettings = ReconcileSettings(), *, now: datetime.datetime | None = None,
                         only: Collection[str] | None = None) -> ReconcileReport:
    """One pass over the sessions due for a look-up (`only`: just these payment tokens)."""
    now = now or utc_now()
    report = ReconcileReport()
    cursor: tuple[datetime.datetime, str] | None = None
    seen = 0
    while seen < settings.max_sessions:
        limit = min(settings.batch, settings.max_sessions - seen)
        async with engine.connect() as conn:
            due = await _due(conn, now, settings, list(gateways), cursor, limit, only)
        for created_at, token, gateway in due:
            await _reconcile_session(engine, gateways, token, gateway, report)
        seen += len(due)
        if len(due) < limit:
            break
        cursor = due[-1][:2]
    return report


async def _due(conn: AsyncConnection, now: datetime.datetime, settings: ReconcileSettings, gateway_names: list[str],
               cursor: tuple[datetime.datetime, str] | None, limit: int,
               only: Collection[str] | None) -> list[tuple[datetime.datetime, str, str]]:
    query = (select(payment_tokens.c.created_at, payment_tokens.c.token, payment_tokens.c.gateway)
             .where(payment_tokens.c.gateway_order_id.is_not(None), payment_tokens.c.gateway.in_(gateway_names),
                    _due_condition(now, settings))
             .order_by(payment_tokens.c.created_at, payment_tokens.c.token).limit(limit))
    if cursor is not None:
        after = tuple_(literal(cursor[0], payment_tokens.c.created_at.type), literal(cursor[1], payment_tokens.c.token.type))
        query = query.where(tuple_(payment_tokens.c.created_at, payment_tokens.c.token) > after)
    if only is not None:
        query = query.where(payment_tokens.c.token.in_(list(only)))
    return [(row.created_at, str(row.token), row.gateway) for row in (await conn.execute(query)).all()]


def _due_condition(now: datetime.datetime, settings: ReconcileSettings) -> Any:
    return or_(
        and_(payment_tokens.c.status == "pending",
             payment_tokens.c.created_at <= now - datetime.timedelta(seconds=settings.after_s)),
        and_(payment_tokens.c.status == "expired",
             payment_tokens.c.expires_at > now - datetime.timedelta(seconds=settings.expired_grace_s)),
    )


def _still_due(session: PaymentRecord | None) -> bool:
    return session is not None and session.gateway_order_id is not None and session.status in ("pending", "expired")


async def _reconcile_session(engine: AsyncEngine, gateways: Mapping[str, ResilientGateway], token: str,
                             gateway: str, report: ReconcileReport) -> None:
    async with engine.connect() as conn:
        if not await _claim(conn, token):  # another reconciler has it right now
            _tally(report, gateway, "skipped")
            return
        try:
            session = await payment_repository.by_token(conn, token)
            await conn.commit()
            if not _still_due(session):  # settled by a webhook, the callback or another reconciler meanwhile
                _tally(report, gateway, "skipped")
                return
            assert session is not None
            _tally(report, gateway, await _look_up_and_apply(conn, gateways[gateway], session))
        except Exception:  # noqa: BLE001 - one session's trouble must not stop the pass
            RECONCILED.labels(gateway, "error").inc()
            report.errors += 1
            _log.exception("reconcile: failed on one session; it is tried again next pass",
                           extra={"gateway": gateway, "payment_token": token})
        finally:
            await _release(conn, token)


def _tally(report: ReconcileReport, gateway: str, result: str) -> None:
    setattr(report, result, getattr(report, result) + 1)
    if result not in ("unavailable", "rejected", "skipped"):
        report.checked += 1
    RECONCILED.labels(gateway, result).inc()


async def _look_up_and_apply(conn: AsyncConnection, gateway: ResilientGateway, session: PaymentRecord) -> str:
    order_id = session.gateway_order_id
    assert order_id is not None
    try:
        payments = await gateway.fetch_order_payments(order_id)
    except GatewayUnavailable as error:
        _log.warning("reconcile: gateway unavailable; next pass tries again",
                     extra={"gateway": session.gateway, "payment_token": session.token, "error": str(error)})
        return "unavailable"
    except GatewayRejected as error:
        _log.warning("reconcile: the gateway refused the look-up",
                     extra={"gateway": session.gateway, "payment_token": session.token, "error": str(error)})
        return "rejected"
    news = what_to_apply(order_id, payments)
    if not news:
        return "unchanged"
    results: list[OutcomeResult] = []
    async with conn.begin():
        for payment in news:
            results.append(await apply_payment_outcome(
                conn, gateway=session.gateway, gateway_order_id=order_id, gateway_payment_id=payment.id,
                status=payment.status, amount_minor=payment.amount_minor, currency=payment.currency,
                source="reconcile", actor=ACTOR))
    kinds = [r.kind for r in results]
    _log.info("reconciled", extra={"gateway": session.gateway, "payment_token": session.token, "outcomes": kinds})
    if any(r.flagged for r in results):
        return "flagged"
    if "captured" in kinds:
        return "captured"
    if "failed" in kinds:
        return "failed"
    return "unchanged"


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


def _lock_ids(token: str) -> tuple[int, int]:
    digest = hashlib.sha256(f"payment-reconcile:{token}".encode()).digest()
    high, low = struct.unpack(">ii", digest[:8])
    return high, low


async def _claim(conn: AsyncConnection, token: str) -> bool:
    high, low = _lock_ids(token)
    got = bool((await conn.execute(text("SELECT pg_try_advisory_lock(:h, :l)"), {"h": high, "l": low})).scalar())
    await conn.commit()
    return got


async def _release(conn: AsyncConnection, token: str) -> None:
    high, low = _lock_ids(token)
    try:
        if conn.in_transaction():
            await conn.rollback()
        await conn.execute(text("SELECT pg_advisory_unlock(:h, :l)"), {"h": high, "l": low})
        await conn.commit()
    except Exception:  # noqa: BLE001 - a broken connection: closing it ends the lock
        _log.warning("reconcile: could not release the claim; dropping the connection", exc_info=True)
        await conn.invalidate()


async def run_reconciler(engine: AsyncEngine, gateways: Mapping[str, ResilientGateway], settings: ReconcileSettings,
                         stop: asyncio.Event | None = None) -> None:
    """A pass every `settings.interval_s` until `stop` is set (or the task is cancelled); a failed
    pass is logged and the next one tries again."""
    stop = stop or asyncio.Event()
    interval = settings.interval_s or 60.0
    while not stop.is_set():
        correlation_id_var.set(new_correlation_id())
        started = time.perf_counter()
        try:
            report = await reconcile_once(engine, gateways, settings)
            PASSES.labels("ok").inc()
            if report != ReconcileReport():
                _log.info("reconcile pass", extra=dataclasses.asdict(report))
        except asyncio.CancelledError:
            raise
        except Exception:
            PASSES.labels("error").inc()
            _log.exception("reconcile pass failed; retrying next interval")
        finally:
            PASS_SECONDS.observe(time.perf_counter() - started)
        try:
            await asyncio.wait_for(stop.wait(), interval)
        except TimeoutError:
            pass


def main(argv: list[str] | None = None) -> int:
    from common.config import load_settings
    from common.db import create_engine
    from common.logs import configure_logging
    from payment_svc.gateways.registry import build_gateways
    from payment_svc.settings import load_payment_settings

    parser = argparse.ArgumentParser(prog="python -m payment_svc.reconcile", description=__doc__.split("\n\n")[0])
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
    settings, payment = load_settings(), load_payment_settings()
    configure_logging("payment_reconcile", settings.log_level)
    reconcile = load_reconcile_settings()
    changes: dict[str, Any] = {}
    if args.after is not None:
        changes["after_s"] = args.after
    if args.interval:
        changes["interval_s"] = args.interval
    if args.batch:
        changes["batch"] = max(1, args.batch)
    reconcile = dataclasses.replace(reconcile, **changes)

    async def run() -> None:
        engine = create_engine(settings, pool_size=2)
        gateways = build_gateways(settings, payment)
        try:
            if args.once:
                correlation_id_var.set(new_correlation_id())
                report = await reconcile_once(engine, gateways, reconcile, only=args.tokens)
                print(json.dumps(dataclasses.asdict(report)), flush=True)
            else:
                await run_reconciler(engine, gateways, reconcile)
        finally:
            gateways.close()
            await engine.dispose()

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
