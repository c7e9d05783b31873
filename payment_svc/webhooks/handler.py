"""The two webhook endpoints: verify the signature over the raw bytes, store the event once, apply
it through apply_payment_outcome, all in one transaction; answer fast.

Order of work for one delivery:
  1. signature (constant time, every configured secret). Missing or wrong → 3101 (HTTP 400):
     nothing is stored or changed; a counter and one log line are all that remain.
  2. one transaction (with a short lock_timeout, so the reply stays well inside the gateway's 5 s):
     INSERT the webhook_events row ON CONFLICT DO NOTHING. A row that is already there and
     `processed` or `ignored` → acknowledged as a duplicate (WebhookAck.duplicate), nothing else
     changes. A row whose processing `failed` earlier is processed again now.
  3. the event, mapped by events.py, goes to apply_payment_outcome(source="webhook") inside a
     savepoint. A correctly signed webhook is the gateway's own word: no call to the gateway is
     made. Amount/currency mismatches are flagged by apply_payment_outcome and still acknowledged
     (2xx): retrying could never change the verdict.
  4. the row becomes `processed` (or `ignored` for event types we do not act on) together with
     the effects and an audit row `webhook:<verdict>` (accepted, duplicate, ignored, flagged).
     If applying raised, the savepoint is rolled back, the row is stored as `failed` with the
     error text, and the call fails with a retryable 5000 so the gateway delivers it again.
No gateway and no NATS call happens here: the outbox relay publishes the events later.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from common.audit import append_audit
from common.clock import utc_now
from common.config import Settings, env_number
from common.errors import CheckoutError, ErrorCode
from payment_svc.outcomes import OutcomeResult, apply_payment_outcome
from payment_svc.webhooks import store
from payment_svc.webhooks.events import ParsedEvent, parse_razorpay, parse_stripe
from payment_svc.webhooks.metrics import SIGNATURE_FAILURES, WEBHOOK_SECONDS, WEBHOOKS
from payment_svc.webhooks.signatures import STRIPE_TOLERANCE_S, verify_razorpay, verify_stripe

Gateway = Literal["razorpay", "stripe"]
Verdict = Literal["accepted", "duplicate", "ignored", "flagged"]

_log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class WebhookSettings:
    razorpay_secrets: tuple[str, ...]
    stripe_secrets: tuple[str, ...]
    stripe_tolerance_s: float = STRIPE_TOLERANCE_S  # STRIPE_WEBHOOK_TOLERANCE
    lock_timeout_s: float = 2.0  # PAYMENT_WEBHOOK_LOCK_TIMEOUT: longest wait for a row lock


def load_webhook_settings(settings: Settings) -> WebhookSettings:
    def number(name: str, default: float) -> float:
        return env_number(name, default, above=0)

    return WebhookSettings(
        razorpay_secrets=settings.razorpay_webhook_secrets, stripe_secrets=settings.stripe_webhook_secrets,
        stripe_tolerance_s=number("STRIPE_WEBHOOK_TOLERANCE", STRIPE_TOLERANCE_S),
        lock_timeout_s=number("PAYMENT_WEBHOOK_LOCK_TIMEOUT", 2.0),
    )


@dataclasses.dataclass(frozen=True)
class Ack:
    event_id: str
    duplicate: bool
    verdict: Verdict


def metadata_values(metadata: Iterable[tuple[str, Any]] | None) -> dict[str, list[str]]:
    """gRPC invocation metadata (HTTP headers through the edge, lower-cased) as name → values."""
    values: dict[str, list[str]] = {}
    for key, value in metadata or ():
        if isinstance(value, str):
            values.setdefault(key.lower(), []).append(value)
    return values


class WebhookHandler:
    def __init__(self, engine: AsyncEngine, settings: WebhookSettings, *, clock: Callable[[], float] = time.time) -> None:
        self._engine = engine
        self._settings = settings
        self._clock = clock

    async def razorpay(self, body: bytes, headers: Mapping[str, Sequence[str]]) -> Ack:
        signatures = list(headers.get("x-razorpay-signature", ()))
        if not verify_razorpay(body, signatures, self._settings.razorpay_secrets):
            self._refuse("razorpay", bool(signatures))
        event_ids = headers.get("x-razorpay-event-id") or [None]
        return await self._handle("razorpay", body, parse_razorpay(body, event_ids[0]))

    async def stripe(self, body: bytes, headers: Mapping[str, Sequence[str]]) -> Ack:
        header = ",".join(headers.get("stripe-signature", ()))
        if not verify_stripe(body, header, self._settings.stripe_secrets, now=self._clock(),
                             tolerance_s=self._settings.stripe_tolerance_s):
            self._refuse("stripe", bool(header))
        return await self._handle("stripe", body, parse_stripe(body))

    def _refuse(self, gateway: Gateway, had_signature: bool) -> None:
        SIGNATURE_FAILURES.labels(gateway).inc()
        _log.warning("webhook refused: signature %s", "invalid" if had_signature else "missing",
                     extra={"gateway": gateway})
        raise CheckoutError(ErrorCode.WEBHOOK_SIGNATURE_INVALID,
                            f"the {gateway} webhook signature is {'invalid' if had_signature else 'missing'}")

    async def _handle(self, gateway: Gateway, body: bytes, event: ParsedEvent) -> Ack:
        started = time.perf_counter()
        try:
            ack, failure = await self._store_and_apply(gateway, body, event)
        except SQLAlchemyError as error:  # the transaction itself failed (lock timeout, database gone): nothing kept
            WEBHOOKS.labels(gateway, "failed").inc()
            _log.warning("webhook not stored; the gateway will retry", exc_info=True,
                         extra={"gateway": gateway, "event_id": event.event_id, "event_type": event.event_type})
            raise _retry_later(error) from None
        finally:
            WEBHOOK_SECONDS.labels(gateway).observe(time.perf_counter() - started)
        if failure is not None:
            WEBHOOKS.labels(gateway, "failed").inc()
            _log.warning("webhook processing failed; stored as failed, the gateway will retry",
                         exc_info=failure, extra={"gateway": gateway, "event_id": event.event_id,
                                                  "event_type": event.event_type})
            raise _retry_later(failure)
        assert ack is not None
        WEBHOOKS.labels(gateway, ack.verdict).inc()
        _log.info("webhook %s", ack.verdict, extra={"gateway": gateway, "event_id": event.event_id,
                                                    "event_type": event.event_type, "duplicate": ack.duplicate})
        return ack

    async def _store_and_apply(self, gateway: Gateway, body: bytes,
                               event: ParsedEvent) -> tuple[Ack | None, BaseException | None]:
        now = utc_now()
        async with self._engine.connect() as conn:
            async with conn.begin():
                await conn.execute(text("SELECT set_config('lock_timeout', :value, true)"),
                                   {"value": f"{max(1, round(self._settings.lock_timeout_s * 1000))}ms"})
                fresh = await store.insert_received(conn, gateway=gateway, event_id=event.event_id,
                                                    event_type=event.event_type, body=body, now=now)
                earlier: store.StoredEvent | None = None
                if not fresh:
                    earlier = await store.lock_existing(conn, gateway, event.event_id)
                    if earlier is not None and earlier.status in ("processed", "ignored"):
                        await _audit(conn, gateway, event, "duplicate", {"stored_status": earlier.status})
                        return Ack(event.event_id, True, "duplicate"), None
                try:
                    async with conn.begin_nested():
                        verdict, facts = await self._apply(conn, gateway, event, now)
                except Exception as error:  # noqa: BLE001 - stored as failed, answered retryable
                    await store.finish(conn, gateway=gateway, event_id=event.event_id, status="failed", now=utc_now(),
                                       error=f"{type(error).__name__}: {error}", body=body)
                    return None, error
                if earlier is not None:
                    facts["processed_again_after"] = {"status": earlier.status, "error": earlier.error}
                await store.finish(conn, gateway=gateway, event_id=event.event_id, now=utc_now(), body=body,
                                   status="processed" if event.report is not None else "ignored",
                                   error=None if event.report is not None else event.ignored_because)
                await _audit(conn, gateway, event, verdict, facts)
                return Ack(event.event_id, False, verdict), None

    async def _apply(self, conn: AsyncConnection, gateway: Gateway, event: ParsedEvent,
                     now: Any) -> tuple[Verdict, dict[str, Any]]:
        report = event.report
        if report is None:
            return "ignored", {"reason": event.ignored_because}
        result = await apply_payment_outcome(
            conn, gateway=gateway, gateway_order_id=report.gateway_order_id,
            gateway_payment_id=report.gateway_payment_id, status=report.status, amount_minor=report.amount_minor,
            currency=report.currency, source="webhook", actor=f"webhook:{gateway}", now=now)
        facts: dict[str, Any] = {
            "gateway_order_id": report.gateway_order_id, "gateway_payment_id": report.gateway_payment_id,
            "reported_status": report.status, "amount_minor": report.amount_minor, "currency": report.currency,
            "outcome": result.kind, "changed": result.changed, "order_status": result.order_status,
            "payment_token": result.payment.token if result.payment else None,
            "order_token": result.payment.order_token if result.payment else None,
        }
        if result.reason:
            facts["reason"] = result.reason
        return verdict_of(result), facts


def verdict_of(result: OutcomeResult) -> Verdict:
    if result.flagged or result.kind == "flagged":
        return "flagged"
    if result.kind in ("captured", "failed"):
        return "accepted"
    if result.kind == "duplicate":
        return "duplicate"
    return "ignored"  # stale news (a failure after a capture), a pending report, an unknown session


async def _audit(conn: AsyncConnection, gateway: Gateway, event: ParsedEvent, verdict: Verdict,
                 facts: Mapping[str, Any]) -> None:
    await append_audit(conn, actor=f"webhook:{gateway}", entity_type="webhook", entity_id=f"{gateway}:{event.event_id}",
                       action=f"webhook:{verdict}", before=None,
                       after={"event_type": event.event_type, **facts})


def _retry_later(error: BaseException) -> CheckoutError:
    return CheckoutError(ErrorCode.INTERNAL, f"the webhook could not be processed now ({type(error).__name__}); "
                                             "send it again", suggested_action="retry the delivery")
