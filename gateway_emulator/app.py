"""The emulator: one HTTP server in front of the Razorpay API, the Stripe API, the hosted
checkout pages and the control API; it owns the state, the faults and the webhook dispatcher."""

from __future__ import annotations

import asyncio
import collections
import logging
import random
import re
import time
from typing import Any
from urllib.parse import urlencode

from . import razorpay_api, razorpay_refunds, stripe_api, stripe_refunds
from .api_faults import with_faults
from .checkout_page import gateway_of, render_checkout, submit_checkout
from .config import EmulatorConfig
from .control import Control
from .faults import FaultBook
from .httpserver import HTTPServer, Request, Response
from .razorpay_api import RazorpayAPI
from .razorpay_checkout_js import checkout_js
from .razorpay_checkout_modal import render_modal, submit_modal
from .razorpay_entities import error_body as razorpay_error
from .razorpay_entities import order_entity, payment_entity
from .razorpay_refunds import RazorpayRefunds
from .refund_book import RefundBook
from .responses import json_response
from .settlement import Settlement
from .signing import razorpay_webhook_signature, stripe_signature_header
from .store import Store
from .stripe_api import StripeAPI
from .stripe_checkout import CheckoutSessions
from .stripe_checkout_page import PAGE as SESSION_PAGE
from .stripe_checkout_page import CheckoutSessionPage
from .stripe_checkout_settle import SessionSettlement
from .stripe_objects import error_body as stripe_error
from .stripe_objects import payment_intent_object
from .stripe_refunds import StripeRefunds
from .webhooks import WebhookDispatcher, WebhookEvent

_log = logging.getLogger("gateway_emulator")
_CHECKOUT = re.compile(r"^/checkout/([^/]+)(?:/(pay|fail))?$")
_CHECKOUT_JS = "/v1/checkout.js"  # as https://checkout.razorpay.com/v1/checkout.js
_MODAL = "/razorpay/checkout/modal"
_MODAL_SUBMIT = re.compile(r"^/razorpay/checkout/([^/]+)/(pay|fail)$")


class Emulator:
    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.store = Store()
        self.faults = FaultBook(config.faults)
        self.rng = random.Random()
        self.api_log: collections.deque[dict[str, Any]] = collections.deque(maxlen=2000)
        self.in_flight: list[dict[str, Any]] = []  # API calls not answered yet (a hang in progress)
        self.api_calls: collections.Counter[str] = collections.Counter()
        self._razorpay = RazorpayAPI(config, self.store, self.faults)
        self.checkout_sessions = CheckoutSessions(
            self.store, api_version=config.stripe_api_version, page_url=self.session_page_url,
            emit=lambda gateway, events: self.dispatcher.emit(gateway, list(events)),
        )
        self._stripe = StripeAPI(config, self.store, self.checkout_sessions)
        self._control = Control(self)
        self.refunds = RefundBook(self.faults)
        self._razorpay_refunds: RazorpayRefunds
        self._stripe_refunds: StripeRefunds
        self._server = HTTPServer(
            self.handle, host=config.host, port=config.port, max_body=config.max_body_bytes
        )
        self.dispatcher: WebhookDispatcher
        self.settlement: Settlement
        self._session_page: CheckoutSessionPage

    # ---- life cycle ----------------------------------------------------------------------
    async def start(self) -> None:
        self.dispatcher = WebhookDispatcher(
            targets={
                "razorpay": self.config.webhook_razorpay_url,
                "stripe": self.config.webhook_stripe_url,
            },
            signers={"razorpay": self._sign_razorpay, "stripe": self._sign_stripe},
            faults=self.faults,
            retry_delays=self.config.webhook_retry_delays,
            timeout_s=self.config.webhook_timeout_s,
        )
        self.settlement = Settlement(self.config, self.store, self.dispatcher)
        self._razorpay_refunds = RazorpayRefunds(self.config, self.store, self.refunds, self.dispatcher)
        self._stripe_refunds = StripeRefunds(self.config, self.store, self.refunds, self.dispatcher)
        sessions = SessionSettlement(self.store, self.checkout_sessions, self.settlement, self.dispatcher)
        self.settlement.others.append(sessions)
        self._session_page = CheckoutSessionPage(self.checkout_sessions, sessions)
        await self._server.start()
        _log.info("listening", extra={"fields": {"url": self.url, **self.webhook_settings()}})

    async def stop(self) -> None:
        await self._server.close()
        await self.dispatcher.close()
        _log.info("stopped", extra={"fields": {"url": self.url}})

    async def reset(self) -> None:
        """Forget every order, payment, intent, idempotency key and webhook; faults and webhook
        targets go back to what the emulator started with."""
        await self.dispatcher.reset()
        self.store.clear()
        self.refunds.clear()
        self.faults.reset()
        self.api_log.clear()
        self.api_calls.clear()
        self.dispatcher.targets = {
            "razorpay": self.config.webhook_razorpay_url,
            "stripe": self.config.webhook_stripe_url,
        }
        self.dispatcher.retry_delays = self.config.webhook_retry_delays
        self.dispatcher.timeout_s = self.config.webhook_timeout_s

    @property
    def port(self) -> int:
        return self._server.port

    @property
    def url(self) -> str:
        host = self.config.host if self.config.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
        return f"http://{host}:{self.port}"

    @property
    def public_url(self) -> str:
        return (self.config.public_url or self.url).rstrip("/")

    def session_page_url(self, session_id: str) -> str:
        """A Stripe Checkout Session's hosted page (its `url`)."""
        return f"{self.public_url}/checkout/sessions/{session_id}"

    def checkout_url(self, gateway_order_id: str, redirect_url: str | None = None) -> str:
        query = f"?{urlencode({'callback_url': redirect_url})}" if redirect_url else ""
        return f"{self.public_url}/checkout/{gateway_order_id}{query}"

    # ---- requests ------------------------------------------------------------------------
    async def handle(self, request: Request) -> Response:
        started = time.monotonic()
        try:
            area, response = await self._route(request)
        except asyncio.CancelledError:  # the client hung up before the answer (httpserver.py)
            if request.path.startswith("/v1/"):
                area = _gateway_of_api_call(request)
                self._log_call(area, request, started, status=None, dropped=False, cancelled=True)
            raise
        self._log_call(area, request, started, status=response.status if not response.abort else None,
                       dropped=response.abort)
        return response

    def _log_call(self, area: str, request: Request, started: float, *, status: int | None, dropped: bool,
                  cancelled: bool = False) -> None:
        elapsed = round((time.monotonic() - started) * 1000, 1)
        entry = {
            "area": area,
            "method": request.method,
            "path": request.path,
            "status": status,
            "dropped": dropped,
            "cancelled": cancelled,  # the client gave up and closed the connection first
            "ms": elapsed,
            "idempotency_key": request.header("idempotency-key") or None,
            "at": time.time(),
        }
        if area in ("razorpay", "stripe"):
            self.api_log.append(entry)
            self.api_calls[area] += 1
        _log.info("request", extra={"fields": {k: v for k, v in entry.items() if k != "at"}})

    async def _route(self, request: Request) -> tuple[str, Response]:
        path = request.path
        if path.startswith("/_emulator/"):
            return "control", await self._control.handle(request)
        if match := SESSION_PAGE.match(path):
            if self.faults.get("stripe").down:
                return "checkout", json_response(503, {"error": {"message": "stripe is down (emulated)"}})
            return "checkout", await self._session_page.handle(request, match.group(1), match.group(2))
        if match := _CHECKOUT.match(path):
            return "checkout", await self._checkout(request, match.group(1), match.group(2))
        if path == _CHECKOUT_JS or path == _MODAL or _MODAL_SUBMIT.match(path):
            return "checkout", self._standard_checkout(request)
        if razorpay_refunds.PATHS.match(path) or stripe_refunds.PATHS.match(path):
            return await self._refund_call(request)
        if path.startswith("/v1/"):
            gateway = _gateway_of_api_call(request)
            api = self._razorpay if gateway == "razorpay" else self._stripe
            faults = self.faults.get(gateway)
            call = {"method": request.method, "path": path, "since": time.time()}
            self.in_flight.append(call)
            try:
                return gateway, await with_faults(
                    gateway, faults, self.rng, lambda: api.handle(request)
                )
            finally:
                self.in_flight.remove(call)
        if path in ("/", "/healthz"):
            return "control", json_response(200, {"status": "ok", "service": "gateway_emulator"})
        return "unknown", json_response(404, {"error": {"message": f"no route for {path}"}})

    async def _refund_call(self, request: Request) -> tuple[str, Response]:
        """Refunds (razorpay_refunds.py, stripe_refunds.py), behind the gateway's API faults."""
        if razorpay_refunds.PATHS.match(request.path):
            if not self._razorpay.authenticated(request):
                return "razorpay", json_response(401, razorpay_error("BAD_REQUEST_ERROR", "Authentication failed"))
            handler, gateway = self._razorpay_refunds.handle, "razorpay"
        else:
            key = StripeAPI._api_key(request)
            if key is None or key != self.config.stripe_api_key:
                return "stripe", json_response(401, stripe_error("Invalid API Key provided", code="api_key_invalid"))
            handler, gateway = self._stripe_refunds.handle, "stripe"

        async def call() -> Response:
            return handler(request)

        return gateway, await with_faults(gateway, self.faults.get(gateway), self.rng, call)

    async def _checkout(self, request: Request, order_id: str, action: str | None) -> Response:
        gateway = gateway_of(self.store, order_id)
        if gateway is not None and self.faults.get(gateway).down:
            return json_response(503, {"error": {"message": f"{gateway} is down (emulated)"}})
        if action is None:
            if request.method not in ("GET", "HEAD"):
                return json_response(405, {"error": {"message": "use GET"}})
            return render_checkout(self.store, order_id, request)
        if request.method != "POST":
            return json_response(405, {"error": {"message": "use POST"}})
        return submit_checkout(self.settlement, self.store, order_id, action == "pay", request)

    def _standard_checkout(self, request: Request) -> Response:
        """Razorpay Standard Checkout: the script, its modal, and the modal's Pay / Fail."""
        if self.faults.get("razorpay").down:
            return json_response(503, {"error": {"message": "razorpay is down (emulated)"}})
        path = request.path
        if path in (_CHECKOUT_JS, _MODAL):
            if request.method not in ("GET", "HEAD"):
                return json_response(405, {"error": {"message": "use GET"}})
            if path == _CHECKOUT_JS:
                return checkout_js()
            return render_modal(self.config, self.store, request)
        if request.method != "POST":
            return json_response(405, {"error": {"message": "use POST"}})
        match = _MODAL_SUBMIT.match(path)
        if match is None:
            return json_response(404, {"error": {"message": f"no route for {path}"}})
        order_id, action = match.group(1), match.group(2)
        return submit_modal(self.config, self.store, self.settlement, order_id, action == "pay", request)

    # ---- webhook signing -----------------------------------------------------------------
    def _sign_razorpay(self, event: WebhookEvent) -> dict[str, str]:
        return {
            "Content-Type": "application/json",
            "User-Agent": "Razorpay-Webhook/v1",
            "X-Razorpay-Event-Id": event.id,
            "X-Razorpay-Signature": razorpay_webhook_signature(
                self.config.razorpay_webhook_secret, event.body
            ),
        }

    def _sign_stripe(self, event: WebhookEvent) -> dict[str, str]:
        return {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            "Stripe-Signature": stripe_signature_header(
                self.config.stripe_webhook_secrets, event.body, int(time.time())
            ),
        }

    # ---- introspection -------------------------------------------------------------------
    def webhook_settings(self) -> dict[str, Any]:
        dispatcher = getattr(self, "dispatcher", None)
        if dispatcher is None:
            return {}
        return {
            "webhook_targets": dict(dispatcher.targets),
            "webhook_retry_delays": list(dispatcher.retry_delays),
            "webhook_timeout_s": dispatcher.timeout_s,
        }

    def state(self) -> dict[str, Any]:
        store = self.store
        orders = []
        for order in store.razorpay_orders.values():
            entity = order_entity(order)
            entity["payment_ids"] = list(order.payment_ids)
            entity["callback_url"] = order.callback_url
            entity["checkout_url"] = self.checkout_url(order.id)
            orders.append(entity)
        intents = []
        for intent in store.payment_intents.values():
            obj = payment_intent_object(intent)
            obj["checkout_url"] = self.checkout_url(intent.id)
            obj["return_url"] = intent.return_url
            intents.append(obj)
        return {
            "url": self.url,
            "public_url": self.public_url,
            "razorpay": {
                "key_id": self.config.razorpay_key_id,
                "orders": orders,
                "payments": [payment_entity(p) for p in store.razorpay_payments.values()],
            },
            "stripe": {
                "payment_intents": intents,
                "checkout_sessions": [
                    self.checkout_sessions.object(s) for s in store.checkout_sessions.values()
                ],
            },
            "refunds": [dict(vars(refund)) for refund in self.refunds.refunds.values()],
            "faults": self.faults.to_json(),
            "api_calls": dict(self.api_calls),
            **self.webhook_settings(),
        }


def _gateway_of_api_call(request: Request) -> str:
    """Both APIs live under /v1: the path decides, then the credentials (Bearer or an `sk_`
    basic user is Stripe)."""
    path = request.path
    if razorpay_api.PATHS.match(path):
        return "razorpay"
    if stripe_api.PATHS.match(path):
        return "stripe"
    scheme, _, _ = request.header("authorization").partition(" ")
    return "stripe" if scheme.lower() == "bearer" else "razorpay"
