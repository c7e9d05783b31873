"""The Razorpay REST subset: basic auth, orders (create, fetch, list, payments) and payments."""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import time

from .config import EmulatorConfig
from .faults import FaultBook
from .httpserver import Request, Response
from .ids import razorpay_id
from .razorpay_entities import (
    collection,
    error_body,
    order_entity,
    payment_entity,
    validation_error,
)
from .razorpay_orders import OrderInvalid, parse_order_request
from .responses import json_response, parse_json_object
from .store import RazorpayOrder, Store

PATHS = re.compile(r"^/v1/(orders|payments)(/.*)?$")
_ORDER = re.compile(r"^/v1/orders/([^/]+)$")
_ORDER_PAYMENTS = re.compile(r"^/v1/orders/([^/]+)/payments$")
_PAYMENT = re.compile(r"^/v1/payments/([^/]+)$")


class RazorpayAPI:
    def __init__(self, config: EmulatorConfig, store: Store, faults: FaultBook) -> None:
        self._config = config
        self._store = store
        self._faults = faults

    async def handle(self, request: Request) -> Response:
        if not self._authenticated(request):
            return json_response(401, error_body("BAD_REQUEST_ERROR", "Authentication failed"))
        method, path = request.method, request.path.rstrip("/")
        if path == "/v1/orders":
            if method == "POST":
                return self._create_order(request)
            if method == "GET":
                return self._list_orders(request)
        elif match := _ORDER_PAYMENTS.match(path):
            if method == "GET":
                return self._order_payments(match.group(1))
        elif match := _ORDER.match(path):
            if method == "GET":
                return self._fetch_order(match.group(1))
        elif match := _PAYMENT.match(path):
            if method == "GET":
                return self._fetch_payment(match.group(1))
        return not_found()

    def authenticated(self, request: Request) -> bool:
        return self._authenticated(request)

    def _authenticated(self, request: Request) -> bool:
        scheme, _, token = request.header("authorization").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = (
                base64.b64decode(token.strip(), validate=True).decode().partition(":")
            )
        except (binascii.Error, UnicodeDecodeError):
            return False
        return hmac.compare_digest(user, self._config.razorpay_key_id) and hmac.compare_digest(
            password, self._config.razorpay_key_secret
        )

    def _create_order(self, request: Request) -> Response:
        body = parse_json_object(request.body)
        if body is None:
            return json_response(400, validation_error("The request body must be a JSON object"))
        try:
            parsed = parse_order_request(body)
        except OrderInvalid as exc:
            return json_response(400, validation_error(exc.description, exc.field))
        store = self._store
        idempotent = self._faults.get("razorpay").receipt_idempotent
        if idempotent and parsed.receipt and parsed.receipt in store.razorpay_receipts:
            existing = store.razorpay_orders[store.razorpay_receipts[parsed.receipt]]
            if (existing.amount, existing.currency) != (parsed.amount, parsed.currency):
                return json_response(
                    400,
                    validation_error(
                        "receipt already used for an order with another amount or currency "
                        "(emulator: orders are idempotent by receipt)",
                        "receipt",
                    ),
                )
            return json_response(200, order_entity(existing))
        order = RazorpayOrder(
            id=razorpay_id("order"),
            amount=parsed.amount,
            currency=parsed.currency,
            receipt=parsed.receipt,
            notes=parsed.notes,
            created_at=int(time.time()),
            callback_url=parsed.callback_url,
            extra=parsed.extra,
        )
        store.razorpay_orders[order.id] = order
        if parsed.receipt:
            store.razorpay_receipts.setdefault(parsed.receipt, order.id)
        return json_response(200, order_entity(order))

    def _list_orders(self, request: Request) -> Response:
        orders = sorted(
            self._store.razorpay_orders.values(), key=lambda o: o.created_at, reverse=True
        )
        receipt = request.query_value("receipt")
        if receipt is not None:
            orders = [o for o in orders if o.receipt == receipt]
        try:
            count = min(int(request.query_value("count") or 10), 100)
            skip = int(request.query_value("skip") or 0)
        except ValueError:
            return json_response(400, validation_error("The count must be an integer.", "count"))
        return json_response(
            200, collection([order_entity(o) for o in orders[skip : skip + count]])
        )

    def _fetch_order(self, order_id: str) -> Response:
        order = self._store.razorpay_orders.get(order_id)
        if order is None:
            return id_not_found()
        return json_response(200, order_entity(order))

    def _order_payments(self, order_id: str) -> Response:
        order = self._store.razorpay_orders.get(order_id)
        if order is None:
            return id_not_found()
        payments = [self._store.razorpay_payments[p] for p in reversed(order.payment_ids)]
        return json_response(200, collection([payment_entity(p) for p in payments]))

    def _fetch_payment(self, payment_id: str) -> Response:
        payment = self._store.razorpay_payments.get(payment_id)
        if payment is None:
            return id_not_found()
        return json_response(200, payment_entity(payment))


def id_not_found() -> Response:
    """Razorpay answers an unknown id with 400, not 404."""
    return json_response(400, error_body("BAD_REQUEST_ERROR", "The id provided does not exist"))


def not_found() -> Response:
    return json_response(
        404, error_body("BAD_REQUEST_ERROR", "The requested URL was not found on the server.")
    )
