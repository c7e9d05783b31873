"""The Stripe REST subset: Bearer (or basic) auth, PaymentIntents create/retrieve, Checkout
Sessions (stripe_checkout.py), and the `Idempotency-Key` header on POSTs, replayed as Stripe does."""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import time
from collections.abc import Callable

from .config import EmulatorConfig
from .formdata import FormError, decode, pairs
from .httpserver import Request, Response
from .ids import stripe_client_secret, stripe_id, stripe_request_id
from .responses import json_response
from .store import IdempotentResult, PaymentIntent, Store
from .stripe_checkout import CheckoutSessions
from .stripe_intents import IntentInvalid, parse_intent_request
from .stripe_objects import error_body, payment_intent_object

PATHS = re.compile(r"^/v1/(payment_intents|checkout|events|charges|customers)(/.*)?$")
_INTENT = re.compile(r"^/v1/payment_intents/([^/]+)$")


class StripeAPI:
    def __init__(self, config: EmulatorConfig, store: Store, checkout: CheckoutSessions | None = None) -> None:
        self._config = config
        self._store = store
        self._checkout = checkout

    async def handle(self, request: Request) -> Response:
        request_id = stripe_request_id()
        response = self._handle(request, request_id)
        response.headers.append(("Request-Id", request_id))
        version = request.header("stripe-version") or self._config.stripe_api_version
        response.headers.append(("Stripe-Version", version))
        return response

    def _handle(self, request: Request, request_id: str) -> Response:
        key = self._api_key(request)
        if key is None:
            return json_response(
                401,
                error_body(
                    "You did not provide an API key. You need to provide your API key in the "
                    "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer "
                    "YOUR_SECRET_KEY')."
                ),
            )
        if not hmac.compare_digest(key, self._config.stripe_api_key):
            masked = f"{key[:8]}{'*' * max(len(key) - 12, 0)}{key[-4:]}" if len(key) > 12 else key
            return json_response(
                401, error_body(f"Invalid API Key provided: {masked}", code="api_key_invalid")
            )
        path = request.path.rstrip("/")
        if request.method == "POST" and path == "/v1/payment_intents":
            return self._idempotent(request, key, lambda: self._create_intent(request, request_id))
        if request.method == "GET" and (match := _INTENT.match(path)):
            return self._retrieve_intent(match.group(1))
        if self._checkout is not None and path.startswith("/v1/checkout/sessions"):
            checkout = self._checkout
            if request.method == "POST" and path == "/v1/checkout/sessions":
                return self._idempotent(request, key, lambda: checkout.create(request, request_id))
            if request.method == "POST":
                answer = self._idempotent(request, key, lambda: checkout.handle(request, path) or _unknown(request))
            else:
                answer = checkout.handle(request, path) or _unknown(request)
            return answer
        return _unknown(request)

    @staticmethod
    def _api_key(request: Request) -> str | None:
        scheme, _, token = request.header("authorization").partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
        if scheme.lower() == "basic":
            try:
                user = base64.b64decode(token.strip(), validate=True).decode().partition(":")[0]
            except (binascii.Error, UnicodeDecodeError):
                return None
            return user or None
        return None

    def _idempotent(
        self, request: Request, api_key: str, execute: Callable[[], Response]
    ) -> Response:
        idem_key = request.header("idempotency-key")
        if not idem_key:
            return execute()
        try:
            fingerprint = tuple(sorted(pairs(request.body)))
        except FormError as exc:
            return json_response(400, error_body(str(exc)))
        cache = self._store.stripe_idempotency
        seen = cache.get((api_key, idem_key))
        if seen is not None:
            if (seen.method, seen.path) != (request.method, request.path):
                return json_response(
                    400,
                    error_body(
                        "Keys for idempotent requests can only be used for the same endpoint "
                        f"they were first used for ('{seen.method} {seen.path}' vs "
                        f"'{request.method} {request.path}'). Try using a key other than "
                        f"'{idem_key}' if you meant to execute a different request.",
                        type="idempotency_error",
                    ),
                )
            if seen.fingerprint != fingerprint:
                return json_response(
                    400,
                    error_body(
                        "Keys for idempotent requests can only be used with the same parameters "
                        "they were first used with. Try using a key other than "
                        f"'{idem_key}' if you meant to execute a different request.",
                        type="idempotency_error",
                    ),
                )
            return Response(
                seen.status,
                seen.body,
                "application/json; charset=utf-8",
                [("Idempotency-Key", idem_key), ("Idempotent-Replayed", "true")],
            )
        response = execute()
        if 200 <= response.status < 300:  # as Stripe: failed validation is not saved
            cache[(api_key, idem_key)] = IdempotentResult(
                request.method, request.path, fingerprint, response.status, response.body
            )
        response.headers.append(("Idempotency-Key", idem_key))
        return response

    def _create_intent(self, request: Request, request_id: str) -> Response:
        try:
            params = decode(pairs(request.body))
            parsed = parse_intent_request(params)
        except FormError as exc:
            return json_response(400, error_body(str(exc)))
        except IntentInvalid as exc:
            return json_response(400, error_body(exc.message, code=exc.code, param=exc.param))
        intent_id = stripe_id("pi")
        return_url = parsed.metadata.get("return_url")
        intent = PaymentIntent(
            id=intent_id,
            amount=parsed.amount,
            currency=parsed.currency,
            metadata=parsed.metadata,
            created=int(time.time()),
            client_secret=stripe_client_secret(intent_id),
            description=parsed.description,
            receipt_email=parsed.receipt_email,
            payment_method_types=parsed.payment_method_types,
            capture_method=parsed.capture_method,
            return_url=return_url,
            request_id=request_id,
            idempotency_key=request.header("idempotency-key") or None,
        )
        self._store.payment_intents[intent.id] = intent
        return json_response(200, payment_intent_object(intent))

    def _retrieve_intent(self, intent_id: str) -> Response:
        intent = self._store.payment_intents.get(intent_id)
        if intent is None:
            return json_response(
                404,
                error_body(
                    f"No such payment_intent: '{intent_id}'",
                    code="resource_missing",
                    param="intent",
                ),
            )
        return json_response(200, payment_intent_object(intent))


def _unknown(request: Request) -> Response:
    return json_response(
        404,
        error_body(
            f"Unrecognized request URL ({request.method}: {request.path}). Please see "
            "https://stripe.com/docs or we can help at https://support.stripe.com/."
        ),
    )
