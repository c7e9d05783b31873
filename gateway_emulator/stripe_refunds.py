"""Stripe's refunds: `POST /v1/refunds` (form: payment_intent or charge, amount in cents, optional:
the rest; metadata[…]; reason; header Idempotency-Key replayed as Stripe does), `GET
/v1/refunds/{id}`; webhooks `refund.created` at once, then `refund.updated` with `charge.refunded`
(succeeded) or with `refund.failed` when it settles. Never more than the intent received: 400
`charge_already_refunded` / `amount_too_large`, as Stripe answers."""

from __future__ import annotations

import re
from typing import Any

from .config import EmulatorConfig
from .formdata import FormError, decode, pairs
from .httpserver import Request, Response
from .ids import stripe_id, stripe_request_id
from .refund_book import EmulatedRefund, KeptAnswer, RefundBook
from .responses import json_response
from .store import PaymentIntent, Store
from .stripe_events import stripe_event
from .stripe_objects import error_body
from .webhooks import WebhookDispatcher, WebhookEvent

PATHS = re.compile(r"^/v1/refunds(/re_[^/]+)?$")
_FETCH = re.compile(r"^/v1/refunds/([^/]+)$")


def refund_object(refund: EmulatedRefund) -> dict[str, Any]:
    return {
        "id": refund.id, "object": "refund", "amount": refund.amount, "balance_transaction": None,
        "charge": refund.charge_id, "created": refund.created_at, "currency": refund.currency,
        "destination_details": {"type": "card", "card": {"type": "refund"}}, "failure_reason": refund.failure_reason,
        "metadata": dict(refund.notes), "payment_intent": refund.payment_id, "reason": refund.reason,
        "receipt_number": None, "source_transfer_reversal": None, "status": refund.status, "transfer_reversal": None,
    }


class StripeRefunds:
    def __init__(self, config: EmulatorConfig, store: Store, book: RefundBook,
                 dispatcher: WebhookDispatcher) -> None:
        self._config = config
        self._store = store
        self._book = book
        self._dispatcher = dispatcher
        book.on_settled["stripe"] = self._settled

    def handle(self, request: Request) -> Response:
        path = request.path.rstrip("/")
        if request.method == "POST" and path == "/v1/refunds":
            return self._create(request)
        if request.method == "GET" and (match := _FETCH.match(path)):
            refund = self._book.refunds.get(match.group(1))
            if refund is None or refund.gateway != "stripe":
                return json_response(404, error_body(f"No such refund: '{match.group(1)}'", code="resource_missing",
                                                     param="id"))
            return json_response(200, refund_object(refund))
        return json_response(404, error_body(f"Unrecognized request URL ({request.method}: {request.path})."))

    def _create(self, request: Request) -> Response:
        try:
            items = pairs(request.body)
            params = decode(items)
        except FormError as error:
            return json_response(400, error_body(str(error)))
        key = request.header("idempotency-key")
        fingerprint = tuple(sorted(items))
        if key and (kept := self._book.keys.get(("stripe", key))) is not None:
            if kept.fingerprint != fingerprint:
                return json_response(400, error_body(
                    "Keys for idempotent requests can only be used with the same parameters they were first used "
                    f"with. Try using a key other than '{key}' if you meant to execute a different request.",
                    type="idempotency_error"))
            return json_response(kept.status, kept.body)
        status, answer = self._refund(params)
        if key and status < 500:
            self._book.keys[("stripe", key)] = KeptAnswer(fingerprint, status, answer)
        return json_response(status, answer)

    def _intent(self, params: dict[str, Any]) -> PaymentIntent | None:
        intent_id = params.get("payment_intent")
        if isinstance(intent_id, str):
            return self._store.payment_intents.get(intent_id)
        charge_id = params.get("charge")
        for intent in self._store.payment_intents.values():
            if any(charge.id == charge_id for charge in intent.charges):
                return intent
        return None

    def _refund(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        intent = self._intent(params)
        if intent is None:
            return 400, error_body("No such payment_intent", code="resource_missing", param="payment_intent")
        if intent.status != "succeeded":
            return 400, error_body(f"This PaymentIntent ({intent.id}) does not have a successful charge to refund.",
                                   code="charge_not_refundable")
        left = intent.amount_received - self._book.held(intent.id)
        raw = params.get("amount")
        try:
            amount = left if raw is None else int(raw)
        except (TypeError, ValueError):
            return 400, error_body("Invalid integer: amount", param="amount")
        if left <= 0:
            return 400, error_body(f"Charge for {intent.id} has already been refunded.", code="charge_already_refunded")
        if amount <= 0 or amount > left:
            return 400, error_body(f"Refund amount ({amount}) is greater than unrefunded amount on charge ({left})",
                                   code="amount_too_large", param="amount")
        if self._book.rejects("stripe"):
            return 402, error_body("The refund could not be made (emulated refusal)", type="card_error",
                                   code="refund_declined")
        given = params.get("metadata")
        metadata: dict[str, Any] = given if isinstance(given, dict) else {}
        succeeded = [charge.id for charge in intent.charges if charge.status == "succeeded"]
        refund = EmulatedRefund(id=stripe_id("re"), gateway="stripe", payment_id=intent.id, amount=amount,
                                currency=intent.currency, notes=metadata, created_at=self._book.now(),
                                reason=params.get("reason") if isinstance(params.get("reason"), str) else None,
                                charge_id=succeeded[-1] if succeeded else None)
        self._book.add(refund)
        self._emit("refund.created", refund_object(refund), refund)
        return 200, refund_object(refund)

    def _settled(self, refund: EmulatedRefund) -> None:
        self._emit("refund.updated", refund_object(refund), refund)
        if refund.status == "failed":
            self._emit("refund.failed", refund_object(refund), refund)
            return
        intent = self._store.payment_intents.get(refund.payment_id)
        refunds = [r for r in self._book.of_payment(refund.payment_id) if r.status != "failed"]
        refunded = sum(r.amount for r in refunds if r.status == "succeeded")
        charge = {"id": refund.charge_id, "object": "charge", "payment_intent": refund.payment_id,
                  "amount": intent.amount_received if intent else refund.amount, "amount_refunded": refunded,
                  "currency": refund.currency, "refunded": bool(intent and refunded >= intent.amount_received),
                  "status": "succeeded",
                  "refunds": {"object": "list", "data": [refund_object(r) for r in refunds], "has_more": False}}
        self._emit("charge.refunded", charge, refund)

    def _emit(self, name: str, data_object: dict[str, Any], refund: EmulatedRefund) -> None:
        event_id, body = stripe_event(name, data_object, api_version=self._config.stripe_api_version,
                                      request_id=stripe_request_id(), idempotency_key=None)
        self._dispatcher.emit("stripe", [WebhookEvent(event_id, "stripe", name, body, refund.payment_id, refund.id)])
