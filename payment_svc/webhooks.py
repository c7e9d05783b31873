"""The two webhook endpoints: verify the signature over the raw bytes, store the event once, apply
it through apply_payment_outcome, all in one transaction; answer fast.

Order of work for one delivery:
  1. signature (constant time, every configured secret). Missing or wrong → 3101 (HTTP 400):
     nothing is stored or changed; a counter and one log line are all that remain.
  2. a capture report of the payment its session is already captured with is a duplicate whatever
     else it says. For the event types that usually arrive once the capture is applied (Razorpay's
     order.paid after payment.captured, Stripe's payment_intent.succeeded after
     checkout.session.completed: FOLLOWS_A_CAPTURE in domain/webhook_events.py), one statement
     with no transaction around it (common/uow.py one_statement; it sets the lock_timeout of 3
     too) stores the event `processed` with its audit row `webhook:duplicate`, only if the session
     is so captured and no row has the event's id or subject yet. If it wrote nothing, everything
     below runs as if it had not been tried.
  3. one transaction (with a short lock_timeout, so the reply stays well inside the gateway's 5 s),
     whose first statement sets that timeout, reads the event's session without a lock and
     INSERTs the webhook_events row ON CONFLICT DO NOTHING, already `processed` (or `ignored` for
     event types we do not act on, events we cannot represent and events older than
     WEBHOOK_MAX_AGE): no one sees it before the transaction commits with its effects. A row that
     is already there and `processed` or `ignored` → acknowledged as a duplicate
     (WebhookAck.duplicate), nothing else changes; so is a Razorpay event whose subject (payment
     id, event type) an event stored under another X-Razorpay-Event-Id already has. A row whose
     processing `failed` earlier is processed again now (and updated).
  4. the event, mapped by domain/webhook_events.py, goes to apply_payment_outcome(source="webhook"),
     given the session as read in 3: a capture or failure is applied by one conditional UPDATE if
     the session is still as read, and a verdict on a captured session (final) stands as read (a
     repeat that 2 did not store: no lock, no statement); else it is judged again under the
     session's row lock. A correctly signed webhook is the gateway's own word: no call to the
     gateway is made. Amount/currency mismatches are flagged by apply_payment_outcome and still
     acknowledged (2xx): retrying could never change the verdict.
  5. commit, with the effects and an audit row `webhook:<verdict>` (duplicate, ignored, flagged;
     accepted for refund news) or, when the event changed the session (accepted), no row of its
     own: the session's `status:<status>` row carries the event (`webhook_event`), one audit row
     per state change. If applying raised, the transaction is rolled back (the row, the effects, events
     and audit rows with it), the row is stored as `failed` with the error text in a transaction of
     its own (unless another delivery processed the event meanwhile), and the call fails with a
     retryable 4001 (HTTP 503; the reply names no exception) so the gateway delivers it again.
No gateway and no NATS call happens here: the outbox relay publishes the events later.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

from sqlalchemy.exc import SQLAlchemyError

from common.clock import utc_now
from common.errors import CheckoutError, ErrorCode
from common.request_context import correlation_id
from common.uow import UnitOfWork, UnitOfWorkFactory, one_statement
from payment_svc.domain.webhook_events import (
    ParsedEvent,
    PaymentReport,
    body_digest_id,
    parse_razorpay,
    parse_stripe,
)
from payment_svc.domain.webhook_signatures import verify_razorpay, verify_stripe
from payment_svc.metrics import SIGNATURE_FAILURES, WEBHOOK_SECONDS, WEBHOOKS
from payment_svc.outcomes import GatewayReport, OutcomeResult, apply_payment_outcome
from payment_svc.refund_repository import RefundRepository
from payment_svc.refund_settlement import RefundReport, RefundResult, apply_refund_report
from payment_svc.repository import PaymentRecord, PaymentRepository, StoredEvent
from payment_svc.tuning import WebhookTuning

Gateway = Literal["razorpay", "stripe"]
Verdict = Literal["accepted", "duplicate", "ignored", "flagged"]

_log = logging.getLogger(__name__)


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
    def __init__(self, uow: UnitOfWorkFactory, repository: PaymentRepository, tuning: WebhookTuning, *,
                 clock: Callable[[], float] = time.time, refunds: RefundRepository | None = None) -> None:
        self._uow = uow
        self._repository = repository
        self._refunds = refunds or RefundRepository()
        self._tuning = tuning
        self._clock = clock

    async def razorpay(self, body: bytes, headers: Mapping[str, Sequence[str]]) -> Ack:
        signatures = list(headers.get("x-razorpay-signature", ()))
        if not verify_razorpay(body, signatures, self._tuning.razorpay_secrets):
            self._refuse("razorpay", bool(signatures))
        event_id = next(iter(headers.get("x-razorpay-event-id", ())), None)
        return await self._handle("razorpay", body, self._read(body, lambda: parse_razorpay(body, event_id)))

    async def stripe(self, body: bytes, headers: Mapping[str, Sequence[str]]) -> Ack:
        header = ",".join(headers.get("stripe-signature", ()))
        if not verify_stripe(body, header, self._tuning.stripe_secrets, now=self._clock(),
                             tolerance_s=self._tuning.stripe_tolerance_s):
            self._refuse("stripe", bool(header))
        return await self._handle("stripe", body, self._read(body, lambda: parse_stripe(body)))

    def _read(self, body: bytes, parse: Callable[[], ParsedEvent]) -> ParsedEvent:
        """The signed event in our terms, ignored if it is older than the window; a body that even
        the parser cannot read is ignored too: a signed event is acknowledged, never refused."""
        try:
            return parse().too_old(self._clock(), self._tuning.max_age_s)
        except Exception:
            _log.warning("a signed webhook body could not be read; acknowledged as ignored", exc_info=True)
            return ParsedEvent(body_digest_id(body), "", None, "the body could not be read")

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
        repository = self._repository
        failure: BaseException | None = None
        # The row is written at once as what it will be when this commits (processed, or ignored for
        # a type we do not act on): nobody sees it before, and a failure rolls it back with the rest.
        outcome = ("processed", None) if event.actionable else ("ignored", event.ignored_because)
        if event.follows_a_capture and event.report is not None:
            ack = await self._store_repeated_capture(gateway, body, event, event.report, now)
            if ack is not None:
                return ack, None
        async with self._uow() as uow:
            conn = uow.conn
            fresh, seen = await repository.receive(
                conn, gateway=gateway, event_id=event.event_id, event_type=event.event_type, body=body, now=now,
                status=outcome[0], error=outcome[1], subject=event.subject,
                gateway_order_id=None if event.report is None else event.report.gateway_order_id,
                lock_timeout_s=self._tuning.lock_timeout_s)
            earlier: StoredEvent | None = None
            if not fresh:
                earlier = await repository.lock_received(conn, gateway, event.event_id)
                if earlier is not None and earlier.status in ("processed", "ignored"):
                    _audit(uow, gateway, event, "duplicate", {"stored_status": earlier.status})
                    await uow.commit()
                    return Ack(event.event_id, True, "duplicate"), None
                same = None if event.subject is None else await repository.event_of_subject(
                    conn, gateway, event.subject)
                if same is not None and same.event_id != event.event_id:  # applied under another event id
                    _audit(uow, gateway, event, "duplicate", {"stored_status": same.status, "subject": event.subject,
                                                              "applied_as": same.event_id})
                    await uow.commit()
                    return Ack(event.event_id, True, "duplicate"), None
            webhook_event = {"id": f"{gateway}:{event.event_id}", **_event_facts(event)}
            if earlier is not None:  # processed again after failing
                webhook_event["processed_again_after"] = {"status": earlier.status, "error": earlier.error}
            try:
                verdict, facts = await self._apply(uow, gateway, event, now, seen, webhook_event)
            except Exception as error:  # left uncommitted: rolled back, its events and audit rows with it
                failure = error
            else:
                if earlier is not None:  # the row as this delivery left it
                    facts["processed_again_after"] = webhook_event["processed_again_after"]
                    await repository.finish_received(conn, gateway=gateway, event_id=event.event_id, now=utc_now(),
                                                     status=outcome[0], error=outcome[1], body=body,
                                                     subject=event.subject)
                if not (verdict == "accepted" and event.report is not None):  # else on the session's status row
                    _audit(uow, gateway, event, verdict, facts)
                await uow.commit()
                return Ack(event.event_id, False, verdict), None
        async with self._uow() as uow:  # stored as failed, answered retryable
            await repository.set_lock_timeout(uow.conn, self._tuning.lock_timeout_s)
            await repository.store_failed(uow.conn, gateway=gateway, event_id=event.event_id,
                                          event_type=event.event_type, body=body, received_at=now, now=utc_now(),
                                          error=f"{type(failure).__name__}: {failure}")
            await uow.commit()
        return None, failure

    async def _store_repeated_capture(self, gateway: Gateway, body: bytes, event: ParsedEvent, report: PaymentReport,
                                      now: Any) -> Ack | None:
        """The second event of a payment its session is already captured with (Razorpay's order.paid
        after payment.captured): a duplicate, stored and audited as the transaction below would, by
        one statement with no transaction around it. None, nothing written, when it is anything else
        (the session not captured yet, or by another payment; the event stored already)."""
        async with one_statement(self._uow) as uow:
            tokens = await self._repository.store_repeated_capture(
                uow.conn, gateway=gateway, event_id=event.event_id, event_type=event.event_type, body=body, now=now,
                subject=event.subject, gateway_order_id=report.gateway_order_id,
                gateway_payment_id=report.gateway_payment_id, payment_token=report.payment_token,
                lock_timeout_s=self._tuning.lock_timeout_s, actor=f"webhook:{gateway}", correlation_id=correlation_id(),
                audit_after={**_event_facts(event), **_report_facts(report, "duplicate", changed=False)})
            await uow.commit()
        return None if tokens is None else Ack(event.event_id, False, "duplicate")

    async def _apply(self, uow: UnitOfWork, gateway: Gateway, event: ParsedEvent, now: Any,
                     seen: PaymentRecord | None, webhook_event: Mapping[str, Any]) -> tuple[Verdict, dict[str, Any]]:
        if event.refunds:
            return await self._apply_refunds(uow, gateway, event, now)
        report = event.report
        if report is None:
            return "ignored", {"reason": event.ignored_because}
        result = await apply_payment_outcome(
            uow, self._repository, GatewayReport(gateway, report.gateway_order_id, report.gateway_payment_id,
                                                 report.status, report.amount_minor, report.currency,
                                                 report.payment_token),
            source="webhook", actor=f"webhook:{gateway}", now=now, seen=seen, webhook_event=webhook_event)
        return verdict_of(result), _facts(report, result)


    async def _apply_refunds(self, uow: UnitOfWork, gateway: Gateway, event: ParsedEvent,
                             now: Any) -> tuple[Verdict, dict[str, Any]]:
        results: list[RefundResult] = []
        for news in event.refunds:
            results.append(await apply_refund_report(
                uow, self._refunds, self._repository,
                RefundReport(gateway, news.gateway_refund_id, news.gateway_payment_id, news.status, news.amount_minor,
                             news.currency, news.refund_id, news.failure_reason),
                source="webhook", actor=f"webhook:{gateway}", now=now))
        facts = {"refunds": [{"gateway_refund_id": news.gateway_refund_id, "reported_status": news.status,
                              "amount_minor": news.amount_minor, "currency": news.currency, "outcome": result.outcome,
                              "refund_id": result.refund.refund_id if result.refund else None}
                             for news, result in zip(event.refunds, results, strict=True)]}
        if any(result.flagged for result in results):
            return "flagged", facts
        if all(result.outcome == "duplicate" for result in results):
            return "duplicate", facts
        return "accepted", facts


def _facts(report: PaymentReport, result: OutcomeResult) -> dict[str, Any]:
    facts = {**_report_facts(report, result.kind, changed=result.changed),
             "payment_token": result.payment.token if result.payment else None,
             "order_token": result.payment.order_token if result.payment else None}
    if result.reason:
        facts["reason"] = result.reason
    return facts


def _report_facts(report: PaymentReport, outcome: str, *, changed: bool) -> dict[str, Any]:
    return {"gateway_order_id": report.gateway_order_id, "gateway_payment_id": report.gateway_payment_id,
            "reported_status": report.status, "amount_minor": report.amount_minor, "currency": report.currency,
            "outcome": outcome, "changed": changed}


def _event_facts(event: ParsedEvent) -> dict[str, Any]:
    facts: dict[str, Any] = {"event_type": event.event_type}
    if event.subject is not None:
        facts["subject"] = event.subject
    if event.created_at is not None:
        facts["created_at"] = event.created_at
    return facts


def verdict_of(result: OutcomeResult) -> Verdict:
    if result.flagged or result.kind == "flagged":
        return "flagged"
    if result.kind in ("captured", "failed"):
        return "accepted"
    if result.kind == "duplicate":
        return "duplicate"
    return "ignored"  # stale news (a failure after a capture), a pending report, an unknown session


def _audit(uow: UnitOfWork, gateway: Gateway, event: ParsedEvent, verdict: Verdict, facts: Mapping[str, Any]) -> None:
    uow.audit(actor=f"webhook:{gateway}", entity_type="webhook", entity_id=f"{gateway}:{event.event_id}",
              action=f"webhook:{verdict}", before=None, after={**_event_facts(event), **facts})


def _retry_later(error: BaseException) -> CheckoutError:
    """Retryable, and naming nothing of ours (the error itself is in the log and the stored row)."""
    return CheckoutError(ErrorCode.GATEWAY_UNAVAILABLE, "the webhook could not be processed now; send it again",
                         suggested_action="retry the delivery")
