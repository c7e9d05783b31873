"""Razorpay's refunds: `POST /v1/payments/{id}/refund` (amount in paise, optional: the rest; notes;
receipt; header `X-Refund-Idempotency`), `GET /v1/refunds/{id}`, `GET /v1/payments/{id}/refunds`;
webhooks `refund.created` at once, then `refund.processed` or `refund.failed` when it settles.
Never more than the payment captured: 400 BAD_REQUEST_ERROR, as Razorpay answers."""

from __future__ import annotations

import re
from typing import Any

from .config import EmulatorConfig
from .httpserver import Request, Response
from .ids import razorpay_event_id, razorpay_id
from .razorpay_entities import collection, error_body, payment_entity, validation_error
from .razorpay_events import php_json
from .refund_book import EmulatedRefund, KeptAnswer, RefundBook
from .responses import json_response, parse_json_object
from .store import Store
from .webhooks import WebhookDispatcher, WebhookEvent

PATHS = re.compile(r"^/v1/(payments/[^/]+/refunds?|refunds/rfnd_[^/]+)$")
_CREATE = re.compile(r"^/v1/payments/([^/]+)/refund$")
_LIST = re.compile(r"^/v1/payments/([^/]+)/refunds$")
_FETCH = re.compile(r"^/v1/refunds/([^/]+)$")


def refund_entity(refund: EmulatedRefund) -> dict[str, Any]:
    return {
        "id": refund.id, "entity": "refund", "amount": refund.amount, "currency": refund.currency,
        "payment_id": refund.payment_id, "notes": dict(refund.notes) if refund.notes else [],
        "receipt": refund.receipt, "acquirer_data": {"arn": None}, "created_at": refund.created_at,
        "batch_id": None, "status": refund.status, "speed_processed": "normal", "speed_requested": "normal",
    }


class RazorpayRefunds:
    def __init__(self, config: EmulatorConfig, store: Store, book: RefundBook,
                 dispatcher: WebhookDispatcher) -> None:
        self._config = config
        self._store = store
        self._book = book
        self._dispatcher = dispatcher
        book.on_settled["razorpay"] = self._settled

    def handle(self, request: Request) -> Response:
        path = request.path.rstrip("/")
        if request.method == "POST" and (match := _CREATE.match(path)):
            return self._create(request, match.group(1))
        if request.method == "GET" and (match := _LIST.match(path)):
            refunds = sorted(self._book.of_payment(match.group(1)), key=lambda r: r.created_at, reverse=True)
            return json_response(200, collection([refund_entity(r) for r in refunds]))
        if request.method == "GET" and (match := _FETCH.match(path)):
            refund = self._book.refunds.get(match.group(1))
            if refund is None or refund.gateway != "razorpay":
                return json_response(400, error_body("BAD_REQUEST_ERROR", "The id provided does not exist"))
            return json_response(200, refund_entity(refund))
        return json_response(404, error_body("BAD_REQUEST_ERROR", "The requested URL was not found on the server."))

    def _create(self, request: Request, payment_id: str) -> Response:
        body = parse_json_object(request.body) if request.body else {}
        if body is None:
            return json_response(400, validation_error("The request body must be a JSON object"))
        key = request.header("x-refund-idempotency")
        fingerprint = (payment_id, repr(sorted(body.items())))
        if key and (kept := self._book.keys.get(("razorpay", key))) is not None:
            if kept.fingerprint != fingerprint:
                return json_response(400, validation_error("The idempotency key was used with another request"))
            return json_response(kept.status, kept.body)
        status, answer = self._refund(payment_id, body)
        if key and status == 200:
            self._book.keys[("razorpay", key)] = KeptAnswer(fingerprint, status, answer)
        return json_response(status, answer)

    def _refund(self, payment_id: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        payment = self._store.razorpay_payments.get(payment_id)
        if payment is None:
            return 400, error_body("BAD_REQUEST_ERROR", "The id provided does not exist")
        if not payment.captured:
            return 400, validation_error("The payment has not been captured", "payment_id")
        left = payment.amount - self._book.held(payment_id)
        amount = body.get("amount", left)
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0 and left > 0:
            return 400, validation_error("The amount must be a positive integer in paise", "amount")
        if left <= 0:
            return 400, validation_error("The payment has been fully refunded already", "amount")
        if amount > left:
            return 400, validation_error("The refund amount provided is greater than amount captured", "amount")
        if self._book.rejects("razorpay"):
            return 400, error_body("BAD_REQUEST_ERROR", "Refund could not be processed (emulated refusal)",
                                   source="business", step="refund_initiation", reason="refund_rejected")
        given = body.get("notes")
        notes: dict[str, Any] = given if isinstance(given, dict) else {}
        receipt = body.get("receipt") if isinstance(body.get("receipt"), str) else None
        refund = EmulatedRefund(id=razorpay_id("rfnd"), gateway="razorpay", payment_id=payment_id, amount=amount,
                                currency=payment.currency, notes=notes, created_at=self._book.now(), receipt=receipt)
        self._book.add(refund)
        self._emit("refund.created", refund)
        return 200, refund_entity(refund)

    def _settled(self, refund: EmulatedRefund) -> None:
        self._emit("refund.processed" if refund.status == "processed" else "refund.failed", refund)

    def _emit(self, name: str, refund: EmulatedRefund) -> None:
        payment = self._store.razorpay_payments.get(refund.payment_id)
        payload: dict[str, Any] = {"refund": {"entity": refund_entity(refund)}}
        contains = ["refund"]
        if payment is not None:
            entity = payment_entity(payment)
            refunded = sum(r.amount for r in self._book.of_payment(payment.id) if r.status == "processed")
            entity.update(amount_refunded=refunded,
                          refund_status=None if not refunded else "full" if refunded >= payment.amount else "partial")
            payload["payment"] = {"entity": entity}
            contains.append("payment")
        body = php_json({"entity": "event", "account_id": self._config.razorpay_account_id, "event": name,
                         "contains": contains, "payload": payload, "created_at": self._book.now()})
        order_id = payment.order_id if payment is not None else ""
        self._dispatcher.emit("razorpay", [WebhookEvent(razorpay_event_id(), "razorpay", name, body, order_id,
                                                        refund.payment_id)])
