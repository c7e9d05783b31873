"""order_svc's clients of the internal RPCs it calls: cart_svc's CartCheckout (ConvertCart,
ReleaseCart) and payment_svc's PaymentSessions (OpenSession). Plain values in and out.

Each call has a deadline (ORDER_CART_CALL_TIMEOUT, ORDER_PAYMENT_CALL_TIMEOUT) that covers its
retries. Only a call that got no answer (UNAVAILABLE, DEADLINE_EXCEEDED without an ErrorDetail:
the callee down, restarting, or too slow) is retried, with full-jitter backoff, while the
deadline leaves time; then the caller gets 4001 (retryable). Every RPC called here is idempotent
by a key order_svc owns (the order token; order token + attempt), so a retry after a lost answer
is safe. An answer with an ErrorDetail is the callee's own verdict (its 4001 included: it has
retried its own dependencies already): it becomes the same CheckoutError here, not retried.
No database connection is held by the callers across these calls.
Each call is a CLIENT span (common/tracing.py) whose `traceparent` goes in the call's metadata.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Protocol, TypeVar

import grpc
from google.protobuf import json_format

from checkout.internal.v1 import (
    cart_checkout_pb2,
    cart_checkout_pb2_grpc,
    payment_sessions_pb2,
    payment_sessions_pb2_grpc,
)
from checkout.v1 import common_pb2, order_pb2
from common.errors import CheckoutError, ErrorCode, code_for
from common.grpc_errors import detail_of
from common.request_context import correlation_id
from common.retry import RetryPolicy
from common.tracing import CLIENT, inject, span
from order_svc.views import PaymentView, Released, SessionRequest, Snapshot, TaxView

T = TypeVar("T")
_NO_ANSWER = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
DEFAULT_POLICY = RetryPolicy(attempts=3, first_delay=0.1, max_delay=1.0)
MIN_ATTEMPT_S = 0.05  # no new try with less time than this left


class CartCheckout(Protocol):
    """What the saga and the recovery worker need of cart_svc (tests give an in-memory fake)."""

    async def convert(self, *, cart_token: str, order_token: str, user_id: str,
                      billing: dict[str, str]) -> Snapshot: ...

    async def release(self, *, order_token: str, reopen_cart: bool, reason: str) -> Released: ...


class PaymentSessions(Protocol):
    """What the saga and a new payment attempt need of payment_svc."""

    async def open_session(self, request: SessionRequest) -> PaymentView: ...


class InternalClient:
    """One channel to one service; `call` runs an RPC under a deadline with bounded retries."""

    def __init__(self, address: str, service: str, *, timeout: float, policy: RetryPolicy = DEFAULT_POLICY,
                 channel: grpc.aio.Channel | None = None) -> None:
        # `channel`: mutual TLS with order_svc's certificate (common/tls.channel); plaintext otherwise
        self._channel = channel or grpc.aio.insecure_channel(address)
        self._service = service
        self._timeout = timeout
        self._policy = policy

    @property
    def channel(self) -> grpc.aio.Channel:
        return self._channel

    async def call(self, rpc: Callable[..., Awaitable[T]], request: object) -> T:
        with span(_rpc_name(rpc), kind=CLIENT, attributes={"rpc.system": "grpc"}):
            return await self._call(rpc, request)

    async def _call(self, rpc: Callable[..., Awaitable[T]], request: object) -> T:
        deadline = time.monotonic() + self._timeout
        metadata = tuple(inject({"x-correlation-id": correlation_id()}).items())
        attempt = 0
        while True:
            attempt += 1
            try:
                return await rpc(request, timeout=max(MIN_ATTEMPT_S, deadline - time.monotonic()), metadata=metadata)
            except grpc.aio.AioRpcError as error:
                detail = detail_of(error)
                if detail is not None:
                    raise CheckoutError(code_for(detail.code), detail.message,
                                        validation_messages=list(detail.validation_messages),
                                        suggested_action=detail.suggested_action) from None
                pause = self._policy.delay(attempt)
                if (error.code() not in _NO_ANSWER or attempt >= self._policy.attempts
                        or deadline - time.monotonic() < pause + MIN_ATTEMPT_S):
                    raise CheckoutError(ErrorCode.GATEWAY_UNAVAILABLE, f"the {self._service} is unavailable",
                                        suggested_action="retry in a few seconds with the same Idempotency-Key") from None
            await asyncio.sleep(pause)

    async def close(self) -> None:
        await self._channel.close()


def _rpc_name(rpc: object) -> str:
    """"checkout.internal.v1.CartCheckout/ConvertCart" of a stub's method."""
    method = getattr(rpc, "_method", b"")
    return (method.decode() if isinstance(method, bytes) else str(method)).lstrip("/") or "rpc"


class CartCheckoutClient:
    def __init__(self, address: str, *, timeout: float, policy: RetryPolicy = DEFAULT_POLICY,
                 channel: grpc.aio.Channel | None = None) -> None:
        self._client = InternalClient(address, "cart service", timeout=timeout, policy=policy, channel=channel)
        self._stub = cart_checkout_pb2_grpc.CartCheckoutStub(self._client.channel)

    async def convert(self, *, cart_token: str, order_token: str, user_id: str, billing: dict[str, str]) -> Snapshot:
        request = cart_checkout_pb2.ConvertCartRequest(
            cart_token=cart_token, order_token=order_token, user_id=user_id,
            billing=common_pb2.Billing(country=billing.get("country", ""), state=billing.get("state", "")))
        return snapshot_of(await self._client.call(self._stub.ConvertCart, request))

    async def release(self, *, order_token: str, reopen_cart: bool, reason: str) -> Released:
        answer = await self._client.call(self._stub.ReleaseCart, cart_checkout_pb2.ReleaseCartRequest(
            order_token=order_token, reopen_cart=reopen_cart, reason=reason))
        return Released(answer.coupon_released, answer.cart_reopened)

    async def close(self) -> None:
        await self._client.close()


class PaymentSessionsClient:
    def __init__(self, address: str, *, timeout: float, policy: RetryPolicy = DEFAULT_POLICY,
                 channel: grpc.aio.Channel | None = None) -> None:
        self._client = InternalClient(address, "payment service", timeout=timeout, policy=policy, channel=channel)
        self._stub = payment_sessions_pb2_grpc.PaymentSessionsStub(self._client.channel)

    async def open_session(self, request: SessionRequest) -> PaymentView:
        message = payment_sessions_pb2.OpenSessionRequest(
            order_token=request.order_token, attempt=request.attempt, amount=request.amount, currency=request.currency,
            gateway=request.gateway, payment_method=request.payment_method, return_url=request.return_url,
            cancel_url=request.cancel_url, user_id=request.user_id, description=request.description,
            order_expires_at=request.order_expires_at)
        return payment_view_of(await self._client.call(self._stub.OpenSession, message))

    async def close(self) -> None:
        await self._client.close()


def snapshot_of(message: cart_checkout_pb2.ConvertedCart) -> Snapshot:
    return Snapshot(
        order_token=message.order_token, cart_token=message.cart_token, user_id=message.user_id,
        currency=message.currency, exchange_rate=message.exchange_rate,
        lines=tuple(json_format.MessageToDict(line, preserving_proto_field_name=True,
                                              always_print_fields_with_no_presence=True) for line in message.lines),
        subtotal=message.subtotal, discount_code=message.discount_code, discount_amount=message.discount_amount,
        taxes=tuple(TaxView(tax.name, tax.rate, tax.amount) for tax in message.taxes), tax_amount=message.tax_amount,
        total=message.total, billing={"country": message.billing.country, "state": message.billing.state},
        converted_at=message.converted_at,
    )


def payment_view_of(message: order_pb2.PaymentSession) -> PaymentView:
    return PaymentView(
        payment_token=message.payment_token, gateway=message.gateway, gateway_order_id=message.gateway_order_id,
        checkout_url=message.checkout_url, status=message.status, amount=message.amount, currency=message.currency,
        expires_at=message.expires_at, order_token=message.order_token, key_id=message.key_id,
        payment_method=message.payment_method)
