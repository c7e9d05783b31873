"""What a verified webhook body says, in our terms: its id, its type and, for the events we act
on, the payment report to hand to apply_payment_outcome. Pure functions, no I/O.

Razorpay (https://razorpay.com/docs/webhooks/payloads/payments/):
  payment.captured, order.paid  → captured, with payload.payment.entity's id, order_id, amount, currency
  payment.failed                → failed, likewise
Stripe (https://docs.stripe.com/checkout/fulfillment): our gateway order is a Checkout Session
(cs_…), its payment a PaymentIntent (pi_…) that exists once the customer tries to pay.
  checkout.session.completed (payment_status paid),
  checkout.session.async_payment_succeeded → captured: the session's id, payment_intent,
                                  amount_total, currency (completed but unpaid: ignored, the
                                  async_payment_* event follows)
  checkout.session.async_payment_failed,
  checkout.session.expired      → failed: nobody can pay that session any more
  payment_intent.succeeded      → captured, amount_received / currency of data.object
  payment_intent.payment_failed → failed (a Checkout Session still takes another try: a later
                                  capture of it still counts)
  A PaymentIntent names its session only through the metadata we gave it at creation
  (`payment_token`, our session's token): the report carries it, and the session is found by it.
  An intent without one (a session opened as a bare PaymentIntent) is its own gateway order.
Refunds (each settles one of our refunds, or records one made at the gateway: refund_settlement.py):
  Razorpay refund.created / refund.processed / refund.failed → payload.refund.entity (id,
    payment_id, amount, currency, status, notes.refund_id = ours)
  Stripe refund.created / refund.updated / refund.failed → data.object, a Refund (id,
    payment_intent, amount, currency, status, metadata.refund_id); charge.refunded → every Refund
    listed in the Charge's `refunds.data`
  status: Razorpay processed / failed / (else) pending; Stripe succeeded → processed, failed and
  canceled → failed, (else) pending
Every other event type is stored as `ignored` and acknowledged. A handled type whose payload lacks
what we need (no order id, no amount) or that we cannot represent (an amount past what a session
can hold, control characters, wrong types, nesting too deep to read) is ignored too, with the
reason: the gateway would send the same signed body again and again, so refusing it could never
succeed. So is an event older than the window (WEBHOOK_MAX_AGE; Razorpay `created_at`, Stripe
`created`): a replay of old signed bytes must not move money now.

A Razorpay payment event's `subject` is (payment id, event type): Razorpay may send one event
under several X-Razorpay-Event-Id values, so it is a duplicate once its subject was applied,
whatever its header says.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import uuid
from collections.abc import Mapping
from typing import Any, Literal

MAX_EVENT_ID = 200
MAX_EVENT_TYPE = 100
MAX_GATEWAY_ID = 255
MAX_AMOUNT_MINOR = 10**12 - 1  # numeric(12, 2) in minor units: what a payment session can hold

RAZORPAY_CAPTURED = frozenset({"payment.captured", "order.paid"})
RAZORPAY_FAILED = frozenset({"payment.failed"})
STRIPE_CAPTURED = frozenset({"payment_intent.succeeded"})
STRIPE_FAILED = frozenset({"payment_intent.payment_failed"})
STRIPE_SESSION_CAPTURED = frozenset({"checkout.session.completed", "checkout.session.async_payment_succeeded"})
STRIPE_SESSION_FAILED = frozenset({"checkout.session.async_payment_failed", "checkout.session.expired"})
# What a gateway sends after the capture of the same payment, usually once the capture is applied
# here (Razorpay's order.paid after payment.captured; Stripe's intent event after the completed
# Checkout Session): worth trying first as a repeat of it (payment_svc/webhooks.py). Any order of
# arrival ends the same; this only says which event is tried the cheap way first.
FOLLOWS_A_CAPTURE = frozenset({"order.paid", "payment_intent.succeeded"})
RAZORPAY_REFUND = frozenset({"refund.created", "refund.processed", "refund.failed"})
STRIPE_REFUND = frozenset({"refund.created", "refund.updated", "refund.failed"})
STRIPE_CHARGE_REFUNDED = "charge.refunded"
_RAZORPAY_REFUND_STATUS: dict[str, Literal["processed", "failed"]] = {"processed": "processed", "failed": "failed"}
_STRIPE_REFUND_STATUS: dict[str, Literal["processed", "failed"]] = {
    "succeeded": "processed", "failed": "failed", "canceled": "failed"}
MAX_FAILURE_REASON = 200


@dataclasses.dataclass(frozen=True)
class PaymentReport:
    gateway_order_id: str
    gateway_payment_id: str
    status: Literal["captured", "failed"]
    amount_minor: int
    currency: str
    payment_token: str = ""  # our session's token, when the gateway only knows the payment (Stripe intents)


@dataclasses.dataclass(frozen=True)
class RefundNews:
    gateway_refund_id: str
    gateway_payment_id: str
    status: Literal["processed", "failed", "pending"]
    amount_minor: int
    currency: str
    refund_id: str  # ours, echoed in notes / metadata ("" for a refund made at the gateway)
    failure_reason: str = ""


@dataclasses.dataclass(frozen=True)
class ParsedEvent:
    event_id: str
    event_type: str
    report: PaymentReport | None  # None: no payment news to apply
    ignored_because: str = ""  # why there is nothing to apply
    refunds: tuple[RefundNews, ...] = ()  # refund news to apply
    created_at: int | None = None  # the gateway's time of the event (Unix seconds), if it says
    subject: str | None = None  # what makes two events one (Razorpay: "<payment id>:<event type>")

    @property
    def actionable(self) -> bool:
        return self.report is not None or bool(self.refunds)

    @property
    def follows_a_capture(self) -> bool:
        """A capture report of a type that usually arrives once its payment's capture is applied."""
        return self.report is not None and self.report.status == "captured" and self.event_type in FOLLOWS_A_CAPTURE

    def too_old(self, now: float, max_age_s: float) -> ParsedEvent:
        """This event, ignored if the gateway made it more than `max_age_s` before `now`."""
        if self.created_at is None or now - self.created_at <= max_age_s or not self.actionable:
            return self
        age_h = (now - self.created_at) / 3600
        return dataclasses.replace(self, report=None, refunds=(), subject=None, ignored_because=(
            f"the event is {round(age_h, 1):g} h old, past the {round(max_age_s / 3600, 1):g} h window"))


def body_digest_id(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


def _usable_id(value: Any) -> str | None:
    if isinstance(value, str) and 0 < len(value) <= MAX_EVENT_ID and value.isascii() and value.isprintable():
        return value
    return None


def _load(body: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nesting past what we read
        return None
    return value if isinstance(value, dict) else None


def _event_type(document: Mapping[str, Any], key: str) -> str:
    """The event type if it is printable ASCII (it is stored and logged); else "" (not handled)."""
    value = document.get(key)
    if isinstance(value, str) and 0 < len(value) <= MAX_EVENT_TYPE and value.isascii() and value.isprintable():
        return value
    return ""


def _created(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**40:
        return None
    return value


def _gateway_id(value: Any) -> str | None:
    if isinstance(value, str) and 0 < len(value) <= MAX_GATEWAY_ID and value.isascii() and value.isprintable():
        return value
    return None


def _amount(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_AMOUNT_MINOR:
        return None
    return value


def _currency(value: Any) -> str | None:
    if isinstance(value, str) and len(value) == 3 and value.isascii() and value.isalpha():
        return value.upper()
    return None


def parse_razorpay(body: bytes, header_event_id: str | None) -> ParsedEvent:
    """The event id is Razorpay's X-Razorpay-Event-Id (the same across retries); without a usable
    one, the SHA-256 of the body (a retry of the same event sends the same bytes)."""
    event_id = _usable_id(header_event_id) or body_digest_id(body)
    document = _load(body)
    if document is None:
        return ParsedEvent(event_id, "", None, "the body is not a JSON object")
    event = _parse_razorpay(document, event_id)
    return dataclasses.replace(event, created_at=_created(document.get("created_at")),
                               subject=None if event.report is None else
                               f"{event.report.gateway_payment_id}:{event.event_type}")


def _parse_razorpay(document: Mapping[str, Any], event_id: str) -> ParsedEvent:
    event_type = _event_type(document, "event")
    if event_type in RAZORPAY_REFUND:
        return _razorpay_refund(event_id, event_type, document)
    if event_type in RAZORPAY_CAPTURED:
        status: Literal["captured", "failed"] = "captured"
    elif event_type in RAZORPAY_FAILED:
        status = "failed"
    else:
        return ParsedEvent(event_id, event_type, None, f"event type {event_type or '(none)'!r} is not handled")
    entity = _dig(document, "payload", "payment", "entity")
    if entity is None:
        return ParsedEvent(event_id, event_type, None, "no payload.payment.entity")
    payment_id, order_id = _gateway_id(entity.get("id")), _gateway_id(entity.get("order_id"))
    amount, currency = _amount(entity.get("amount")), _currency(entity.get("currency"))
    if payment_id is None or order_id is None or amount is None or currency is None:
        return ParsedEvent(event_id, event_type, None, "the payment entity lacks a usable id, order_id, amount "
                           f"(whole minor units, 0 to {MAX_AMOUNT_MINOR}) or currency")
    return ParsedEvent(event_id, event_type, PaymentReport(order_id, payment_id, status, amount, currency))


def parse_stripe(body: bytes) -> ParsedEvent:
    """The event id is the event object's `id` (evt_…; the same across Stripe's retries)."""
    document = _load(body)
    if document is None:
        return ParsedEvent(body_digest_id(body), "", None, "the body is not a JSON object")
    event_id = _usable_id(document.get("id")) or body_digest_id(body)
    return dataclasses.replace(_parse_stripe(document, event_id), created_at=_created(document.get("created")))


def _parse_stripe(document: Mapping[str, Any], event_id: str) -> ParsedEvent:
    event_type = _event_type(document, "type")
    if event_type in STRIPE_REFUND or event_type == STRIPE_CHARGE_REFUNDED:
        return _stripe_refunds(event_id, event_type, document)
    if event_type in STRIPE_SESSION_CAPTURED or event_type in STRIPE_SESSION_FAILED:
        return _stripe_session_event(event_id, event_type, _dig(document, "data", "object"))
    if event_type in STRIPE_CAPTURED:
        status: Literal["captured", "failed"] = "captured"
        amount_key = "amount_received"
    elif event_type in STRIPE_FAILED:
        status, amount_key = "failed", "amount"
    else:
        return ParsedEvent(event_id, event_type, None, f"event type {event_type or '(none)'!r} is not handled")
    intent = _dig(document, "data", "object")
    if intent is None or intent.get("object", "payment_intent") != "payment_intent":
        return ParsedEvent(event_id, event_type, None, "data.object is not a PaymentIntent")
    intent_id = _gateway_id(intent.get("id"))
    amount, currency = _amount(intent.get(amount_key)), _currency(intent.get("currency"))
    if intent_id is None or amount is None or currency is None:
        return ParsedEvent(event_id, event_type, None, f"the PaymentIntent lacks a usable id, {amount_key} "
                           f"(whole minor units, 0 to {MAX_AMOUNT_MINOR}) or currency")
    metadata = intent.get("metadata")
    token = _token(metadata.get("payment_token")) if isinstance(metadata, Mapping) else ""
    return ParsedEvent(event_id, event_type, PaymentReport(intent_id, intent_id, status, amount, currency, token))


def _stripe_session_event(event_id: str, event_type: str, session: Mapping[str, Any] | None) -> ParsedEvent:
    if session is None or session.get("object") != "checkout.session":
        return ParsedEvent(event_id, event_type, None, "data.object is not a Checkout Session")
    session_id = _gateway_id(session.get("id"))
    amount, currency = _amount(session.get("amount_total")), _currency(session.get("currency"))
    if session_id is None or amount is None or currency is None:
        return ParsedEvent(event_id, event_type, None, "the Checkout Session lacks id, amount_total or currency")
    intent_id = _gateway_id(session.get("payment_intent"))
    if event_type in STRIPE_SESSION_FAILED:
        return ParsedEvent(event_id, event_type, PaymentReport(session_id, intent_id or session_id, "failed",
                                                               amount, currency))
    if session.get("payment_status") != "paid":
        return ParsedEvent(event_id, event_type, None, f"the Checkout Session is {session.get('payment_status')!r}, "
                                                       "not paid (an async_payment event follows)")
    if intent_id is None:
        return ParsedEvent(event_id, event_type, None, "the paid Checkout Session names no payment_intent")
    return ParsedEvent(event_id, event_type, PaymentReport(session_id, intent_id, "captured", amount, currency))


def _token(value: Any) -> str:
    """Our payment token as we wrote it into the metadata (a UUID), else nothing."""
    if isinstance(value, str) and len(value) == 36:
        try:
            return str(uuid.UUID(value))
        except ValueError:
            return ""
    return ""


def _razorpay_refund(event_id: str, event_type: str, document: Mapping[str, Any]) -> ParsedEvent:
    entity = _dig(document, "payload", "refund", "entity")
    if entity is None:
        return ParsedEvent(event_id, event_type, None, "no payload.refund.entity")
    described = entity.get("error_description")
    news = _refund_news(entity, "payment_id", _RAZORPAY_REFUND_STATUS, "notes",
                        described if isinstance(described, str) else "")
    if news is None:
        return ParsedEvent(event_id, event_type, None, "the refund entity lacks id, payment_id, amount or currency")
    return ParsedEvent(event_id, event_type, None, refunds=(news,))


def _stripe_refunds(event_id: str, event_type: str, document: Mapping[str, Any]) -> ParsedEvent:
    obj = _dig(document, "data", "object")
    if obj is None:
        return ParsedEvent(event_id, event_type, None, "no data.object")
    if event_type == STRIPE_CHARGE_REFUNDED:
        listed = _dig(obj, "refunds")
        items = listed.get("data") if listed is not None else None
        candidates = [item for item in items if isinstance(item, Mapping)] if isinstance(items, list) else []
        if not candidates:
            return ParsedEvent(event_id, event_type, None, "the Charge lists no refunds (refund.updated carries them)")
    elif obj.get("object") != "refund":
        return ParsedEvent(event_id, event_type, None, "data.object is not a Refund")
    else:
        candidates = [obj]
    found = []
    for refund in candidates:
        reason = refund.get("failure_reason")
        news = _refund_news(refund, "payment_intent", _STRIPE_REFUND_STATUS, "metadata",
                            reason if isinstance(reason, str) else "")
        if news is None:
            return ParsedEvent(event_id, event_type, None, "a Refund lacks id, payment_intent, amount or currency")
        found.append(news)
    return ParsedEvent(event_id, event_type, None, refunds=tuple(found))


def _refund_news(entity: Mapping[str, Any], payment_key: str, statuses: Mapping[str, Literal["processed", "failed"]],
                 notes_key: str, failure_reason: str) -> RefundNews | None:
    refund_id, payment_id = _gateway_id(entity.get("id")), _gateway_id(entity.get(payment_key))
    amount, currency = _amount(entity.get("amount")), _currency(entity.get("currency"))
    if refund_id is None or payment_id is None or amount is None or amount == 0 or currency is None:
        return None
    notes = entity.get(notes_key)
    ours = notes.get("refund_id") if isinstance(notes, Mapping) else None
    status = entity.get("status")
    return RefundNews(refund_id, payment_id, statuses.get(status, "pending") if isinstance(status, str) else "pending",
                      amount, currency, _gateway_id(ours) or "",
                      failure_reason[:MAX_FAILURE_REASON] if failure_reason.isprintable() else "")


def _dig(document: Mapping[str, Any], *keys: str) -> Mapping[str, Any] | None:
    value: Any = document
    for key in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value if isinstance(value, Mapping) else None
