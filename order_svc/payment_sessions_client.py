"""order_svc's client of payment_svc's internal PaymentSessions.OpenSession.

OpenSession is idempotent per (order, attempt), so a lost reply or a restarting payment service
is simply retried, a few times, with backoff; then the caller gets 4001 (retryable) and the
order keeps its recovery point for the client's own retry.
"""

from __future__ import annotations

import grpc

from checkout.internal.v1 import payment_sessions_pb2, payment_sessions_pb2_grpc
from checkout.v1 import order_pb2
from common.errors import CheckoutError, ErrorCode, code_for
from common.grpc_errors import detail_of
from common.request_context import correlation_id
from common.retry import RetryPolicy, retrying

_RETRYABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


class PaymentSessionsClient:
    def __init__(self, address: str, *, timeout: float = 15.0, policy: RetryPolicy = RetryPolicy()) -> None:
        self._channel = grpc.aio.insecure_channel(address)
        self._stub = payment_sessions_pb2_grpc.PaymentSessionsStub(self._channel)
        self._timeout = timeout
        self._policy = policy

    async def open(self, request: payment_sessions_pb2.OpenSessionRequest) -> order_pb2.PaymentSession:
        async def call() -> order_pb2.PaymentSession:
            return await self._stub.OpenSession(request, timeout=self._timeout,
                                                metadata=(("x-correlation-id", correlation_id()),))

        try:
            return await retrying(call, self._policy, _is_retryable)
        except grpc.aio.AioRpcError as error:
            raise _as_checkout_error(error) from None

    async def close(self) -> None:
        await self._channel.close()


def _is_retryable(error: BaseException) -> bool:
    if not isinstance(error, grpc.aio.AioRpcError) or error.code() not in _RETRYABLE:
        return False
    detail = detail_of(error)
    return detail is None or detail.retryable


def _as_checkout_error(error: grpc.aio.AioRpcError) -> CheckoutError:
    detail = detail_of(error)
    if detail is None:
        return CheckoutError(ErrorCode.GATEWAY_UNAVAILABLE, "the payment service is unavailable")
    return CheckoutError(code_for(detail.code), detail.message, validation_messages=list(detail.validation_messages),
                         suggested_action=detail.suggested_action)
