"""Stripe Checkout Sessions (mode `payment`): create, retrieve, expire, list, as Stripe answers.

    POST /v1/checkout/sessions                 form-encoded; Idempotency-Key honoured (stripe_api.py)
    GET  /v1/checkout/sessions/{id}
    POST /v1/checkout/sessions/{id}/expire     open → expired, webhook checkout.session.expired
    GET  /v1/checkout/sessions?payment_intent=&status=&limit=

A session's `url` is the emulator's hosted page for it (stripe_checkout_page.py); it is null once
the session is complete or expired, as Stripe's. A session past its `expires_at` expires the next
time anyone looks at it (with its webhook). Pay and Fail are in stripe_checkout_settle.py.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .formdata import FormError, decode, pairs
from .httpserver import Request, Response
from .ids import stripe_id
from .responses import json_response
from .store import CheckoutSession, Store
from .stripe_events import stripe_event
from .stripe_intents import CURRENCIES, IntentInvalid, metadata_of
from .stripe_objects import error_body
from .webhooks import WebhookEvent

MIN_LIFE_S = 30 * 60  # Stripe: expires_at is 30 minutes to 24 hours after creation
MAX_LIFE_S = 24 * 60 * 60
MIN_AMOUNT = 50  # in the currency's smallest unit, as for PaymentIntents
PAYMENT_METHOD_TYPES = frozenset({
    "card", "link", "paypal", "alipay", "wechat_pay", "klarna", "afterpay_clearpay", "affirm", "ideal",
    "sepa_debit", "bancontact", "eps", "giropay", "p24", "sofort", "us_bank_account", "cashapp", "amazon_pay",
})
_ALLOWED = frozenset({
    "mode", "line_items", "success_url", "cancel_url", "client_reference_id", "metadata", "payment_intent_data",
    "expires_at", "payment_method_types", "customer_email", "locale", "submit_type", "expand", "ui_mode",
})
_INTENT_DATA = frozenset({"metadata", "description", "capture_method", "receipt_email", "statement_descriptor"})
_SESSION = re.compile(r"^/v1/checkout/sessions/([^/]+)$")
_EXPIRE = re.compile(r"^/v1/checkout/sessions/([^/]+)/expire$")

Emit = Callable[[str, Sequence[WebhookEvent]], None]


@dataclass(frozen=True)
class SessionRequest:
    amount_total: int
    currency: str
    line_items: list[dict[str, Any]]
    success_url: str
    cancel_url: str | None
    client_reference_id: str | None
    metadata: dict[str, str]
    intent_metadata: dict[str, str]
    intent_description: str | None
    payment_method_types: list[str]
    expires_at: int


def parse_session_request(params: dict[str, Any], now: int) -> SessionRequest:
    for name in params:
        if name not in _ALLOWED:
            raise IntentInvalid(f"Received unknown parameter: {name}", name, "parameter_unknown")
    mode = params.get("mode")
    if mode is None:
        raise IntentInvalid("Missing required param: mode.", "mode", "parameter_missing")
    if mode != "payment":
        raise IntentInvalid(f"Invalid mode: {mode} (the emulator has mode=payment only)", "mode")
    if params.get("ui_mode", "hosted") != "hosted":
        raise IntentInvalid("The emulator has ui_mode=hosted only.", "ui_mode")
    items, amount, currency = _line_items(params.get("line_items"))
    success_url = _url(params, "success_url", required=True)
    assert success_url is not None
    reference = params.get("client_reference_id")
    if reference is not None and (not isinstance(reference, str) or len(reference) > 200):
        raise IntentInvalid("client_reference_id must be a string of at most 200 characters.",
                            "client_reference_id")
    intent_data = params.get("payment_intent_data") or {}
    if not isinstance(intent_data, dict):
        raise IntentInvalid("Invalid object", "payment_intent_data")
    for name in intent_data:
        if name not in _INTENT_DATA:
            raise IntentInvalid(f"Received unknown parameter: payment_intent_data[{name}]",
                                f"payment_intent_data[{name}]", "parameter_unknown")
    description = intent_data.get("description")
    return SessionRequest(
        amount_total=amount, currency=currency, line_items=items, success_url=success_url,
        cancel_url=_url(params, "cancel_url", required=False), client_reference_id=reference or None,
        metadata=metadata_of(params.get("metadata")), intent_metadata=metadata_of(intent_data.get("metadata")),
        intent_description=description if isinstance(description, str) and description else None,
        payment_method_types=_methods(params.get("payment_method_types", ["card"])),
        expires_at=_expires_at(params.get("expires_at"), now),
    )


def _line_items(raw: Any) -> tuple[list[dict[str, Any]], int, str]:
    if not isinstance(raw, list) or not raw:
        raise IntentInvalid("You must specify either `line_items` in `payment` mode.", "line_items",
                            "parameter_missing")
    items: list[dict[str, Any]] = []
    currencies: set[str] = set()
    total = 0
    for index, item in enumerate(raw):
        param = f"line_items[{index}]"
        if not isinstance(item, dict):
            raise IntentInvalid("Invalid object", param)
        if "price" in item:
            raise IntentInvalid(f"No such price: '{item['price']}' (the emulator takes price_data only)",
                                f"{param}[price]", "resource_missing")
        quantity = _integer(item.get("quantity"), f"{param}[quantity]")
        data = item.get("price_data")
        if not isinstance(data, dict):
            raise IntentInvalid("Missing required param: price_data.", f"{param}[price_data]", "parameter_missing")
        currency = str(data.get("currency", "")).lower()
        if currency not in CURRENCIES:
            raise IntentInvalid(f"Invalid currency: {currency}", f"{param}[price_data][currency]")
        unit_amount = _integer(data.get("unit_amount"), f"{param}[price_data][unit_amount]", minimum=0)
        product = data.get("product_data")
        name = product.get("name") if isinstance(product, dict) else None
        if not isinstance(name, str) or not name:
            raise IntentInvalid("Missing required param: product_data[name].",
                                f"{param}[price_data][product_data][name]", "parameter_missing")
        if quantity < 1:
            raise IntentInvalid("Quantity must be at least 1.", f"{param}[quantity]")
        currencies.add(currency)
        total += unit_amount * quantity
        items.append({"quantity": quantity, "currency": currency, "unit_amount": unit_amount, "name": name})
    if len(currencies) != 1:
        raise IntentInvalid("All line items must have the same currency.", "line_items")
    if total < MIN_AMOUNT:
        raise IntentInvalid(f"The Checkout Session's total amount due must add up to at least {MIN_AMOUNT}.",
                            "line_items", "amount_too_small")
    return items, total, currencies.pop()


def _integer(raw: Any, param: str, minimum: int | None = None) -> int:
    if not isinstance(raw, str) or not raw.lstrip("-").isdigit():
        raise IntentInvalid(f"Invalid integer: {raw}", param, "parameter_invalid_integer")
    value = int(raw)
    if minimum is not None and value < minimum:
        raise IntentInvalid(f"Invalid integer: {raw}", param, "parameter_invalid_integer")
    return value


def _url(params: dict[str, Any], name: str, *, required: bool) -> str | None:
    raw = params.get(name)
    if raw is None or raw == "":
        if required:
            raise IntentInvalid(f"Missing required param: {name}.", name, "parameter_missing")
        return None
    parts = urlsplit(raw) if isinstance(raw, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc or len(raw) > 5000:
        raise IntentInvalid("Not a valid URL", name, "url_invalid")
    return str(raw)


def _methods(raw: Any) -> list[str]:
    if not isinstance(raw, list) or not raw or not all(isinstance(m, str) for m in raw):
        raise IntentInvalid("Invalid array", "payment_method_types")
    for index, method in enumerate(raw):
        if method not in PAYMENT_METHOD_TYPES:
            raise IntentInvalid(f"Invalid payment_method_types[{index}]: must be one of "
                                f"{', '.join(sorted(PAYMENT_METHOD_TYPES))}", f"payment_method_types[{index}]")
    return list(raw)


def _expires_at(raw: Any, now: int) -> int:
    if raw is None:
        return now + MAX_LIFE_S
    value = _integer(raw, "expires_at")
    if value < now + MIN_LIFE_S:
        raise IntentInvalid("The `expires_at` timestamp must be at least 30 minutes after Checkout Session "
                            "creation.", "expires_at")
    if value > now + MAX_LIFE_S:
        raise IntentInvalid("The `expires_at` timestamp must be less than 24 hours from Checkout Session "
                            "creation.", "expires_at")
    return value


def session_object(session: CheckoutSession, page_url: str) -> dict[str, Any]:
    return {
        "id": session.id,
        "object": "checkout.session",
        "after_expiration": None,
        "allow_promotion_codes": None,
        "amount_subtotal": session.amount_total,
        "amount_total": session.amount_total,
        "automatic_tax": {"enabled": False, "liability": None, "status": None},
        "billing_address_collection": None,
        "cancel_url": session.cancel_url,
        "client_reference_id": session.client_reference_id,
        "client_secret": None,
        "created": session.created,
        "currency": session.currency,
        "customer": None,
        "customer_details": None,
        "customer_email": None,
        "expires_at": session.expires_at,
        "invoice": None,
        "livemode": False,
        "locale": None,
        "metadata": dict(session.metadata),
        "mode": "payment",
        "payment_intent": session.payment_intent,
        "payment_link": None,
        "payment_method_collection": "if_required",
        "payment_method_types": list(session.payment_method_types),
        "payment_status": session.payment_status,
        "status": session.status,
        "submit_type": None,
        "success_url": session.success_url,
        "ui_mode": "hosted",
        "url": page_url if session.status == "open" else None,
    }


def not_found(session_id: str) -> Response:
    return json_response(404, error_body(f"No such checkout.session: '{session_id}'", code="resource_missing",
                                         param="session"))


class CheckoutSessions:
    def __init__(self, store: Store, *, api_version: str, page_url: Callable[[str], str], emit: Emit) -> None:
        self._store = store
        self._api_version = api_version
        self._page_url = page_url
        self._emit = emit

    def get(self, session_id: str) -> CheckoutSession | None:
        """The session, expired first if its time is up."""
        session = self._store.checkout_sessions.get(session_id)
        if session is not None and session.status == "open" and time.time() >= session.expires_at:
            self.expire(session)
        return session

    def object(self, session: CheckoutSession) -> dict[str, Any]:
        return session_object(session, self._page_url(session.id))

    def event(self, event_type: str, session: CheckoutSession, payment_id: str | None = None) -> WebhookEvent:
        event_id, body = stripe_event(event_type, self.object(session), api_version=self._api_version,
                                      request_id=session.request_id, idempotency_key=session.idempotency_key)
        return WebhookEvent(event_id, "stripe", event_type, body, session.id, payment_id)

    def expire(self, session: CheckoutSession) -> None:
        session.status = "expired"
        self._emit("stripe", [self.event("checkout.session.expired", session, session.payment_intent)])

    # ---- the API -------------------------------------------------------------------------
    def create(self, request: Request, request_id: str) -> Response:
        try:
            parsed = parse_session_request(decode(pairs(request.body)), int(time.time()))
        except FormError as exc:
            return json_response(400, error_body(str(exc)))
        except IntentInvalid as exc:
            return json_response(400, error_body(exc.message, code=exc.code, param=exc.param))
        session = CheckoutSession(
            id=stripe_id("cs_test"), amount_total=parsed.amount_total, currency=parsed.currency,
            line_items=parsed.line_items, success_url=parsed.success_url, cancel_url=parsed.cancel_url,
            client_reference_id=parsed.client_reference_id, metadata=parsed.metadata,
            intent_metadata=parsed.intent_metadata, intent_description=parsed.intent_description,
            payment_method_types=parsed.payment_method_types, created=int(time.time()), expires_at=parsed.expires_at,
            request_id=request_id, idempotency_key=request.header("idempotency-key") or None,
        )
        self._store.checkout_sessions[session.id] = session
        return json_response(200, self.object(session))

    def handle(self, request: Request, path: str) -> Response | None:
        """GET one or a list, POST …/expire; None for a path that is not ours."""
        if request.method == "GET" and path == "/v1/checkout/sessions":
            return self._list(request)
        if request.method == "GET" and (match := _SESSION.match(path)):
            session = self.get(match.group(1))
            return not_found(match.group(1)) if session is None else json_response(200, self.object(session))
        if request.method == "POST" and (match := _EXPIRE.match(path)):
            return self._expire(match.group(1))
        return None

    def _expire(self, session_id: str) -> Response:
        session = self.get(session_id)
        if session is None:
            return not_found(session_id)
        if session.status != "open":
            return json_response(400, error_body(
                f"Only Checkout Sessions with a status of `open` can be expired. This session has a status of "
                f"`{session.status}`.", code="checkout_session_not_open"))
        self.expire(session)
        return json_response(200, self.object(session))

    def _list(self, request: Request) -> Response:
        intent, status = request.query_value("payment_intent"), request.query_value("status")
        try:
            limit = max(1, min(100, int(request.query_value("limit") or "10")))
        except ValueError:
            return json_response(400, error_body("Invalid integer: limit", param="limit"))
        found = [s for s in (self.get(sid) for sid in list(self._store.checkout_sessions)) if s is not None
                 and (intent is None or s.payment_intent == intent) and (status is None or s.status == status)]
        found.sort(key=lambda s: s.created, reverse=True)
        return json_response(200, {"object": "list", "url": "/v1/checkout/sessions", "has_more": len(found) > limit,
                                   "data": [self.object(s) for s in found[:limit]]})
