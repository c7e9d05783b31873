"""Who may call which RPC: the caller table, checked against the identity in the caller's
certificate (common/tls.py) before a servicer runs.

A method's own entry wins over its service's; a service or method absent from the table is open to
nobody (tests/unit/common/test_callers.py fails when a proto service is missing). The public API
is reached through the edge; the developer certificate (grpcurl, `make grpcurl`) may read it with a
bearer token like any client, but never the internal RPCs, the webhooks or the admin RPCs. Health
and reflection are open to any holder of a certificate from the internal CA. Admin RPCs also need
the admin role in the bearer token (common/request_context.require_admin), which the edge passes on.

A refusal is PERMISSION_DENIED with the envelope's 1102, and a log line naming the caller. The
server installs this check only with TLS: under GRPC_PLAINTEXT (development and tests) there is no
identity and the table is not enforced.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from common.errors import CheckoutError, ErrorCode
from common.tls import identity_name, peer_identity

ANYONE = "*"  # any certificate of the internal CA
EDGE, DEVELOPER, ORDER = "edge", "developer", "order_svc"
PUBLIC = frozenset({EDGE, DEVELOPER})
EDGE_ONLY = frozenset({EDGE})

CALLERS: dict[str, frozenset[str]] = {
    # internal RPCs (proto/checkout/internal/v1): the order saga and its recovery worker
    "checkout.internal.v1.CartCheckout": frozenset({ORDER}),
    "checkout.internal.v1.PaymentSessions": frozenset({ORDER}),
    # the public API (REST through the edge)
    "checkout.v1.CatalogService": PUBLIC,
    "checkout.v1.CartService": PUBLIC,
    "checkout.v1.OrderService": PUBLIC,
    "checkout.v1.PaymentService": PUBLIC,
    "checkout.v1.EnrollmentService": PUBLIC,
    # admin RPCs: from the edge, with an admin token
    "checkout.v1.AdminService": EDGE_ONLY,
    "checkout.v1.RefundService": EDGE_ONLY,  # payment_svc's admin refunds
    "checkout.v1.EnrollmentService/ListDeadLetters": EDGE_ONLY,
    "checkout.v1.EnrollmentService/ReplayDeadLetter": EDGE_ONLY,
    # the gateways' webhooks reach us only through the edge
    "checkout.v1.PaymentService/RazorpayWebhook": EDGE_ONLY,
    "checkout.v1.PaymentService/StripeWebhook": EDGE_ONLY,
    # operations
    "grpc.health.v1.Health": frozenset({ANYONE}),
    "grpc.reflection.v1alpha.ServerReflection": frozenset({ANYONE}),
    "grpc.reflection.v1.ServerReflection": frozenset({ANYONE}),
}

_log = logging.getLogger("checkout.callers")


def allowed_callers(method: str, table: dict[str, frozenset[str]] = CALLERS) -> frozenset[str]:
    """`/pkg.Service/Method` -> the identities that may call it (empty: nobody)."""
    full = method.lstrip("/")
    service = full.split("/", 1)[0]
    return table.get(full, table.get(service, frozenset()))


def may_call(identity: str, method: str, table: dict[str, frozenset[str]] = CALLERS) -> bool:
    allowed = allowed_callers(method, table)
    return ANYONE in allowed or identity_name(identity) in allowed


class CallerCheck(grpc.aio.ServerInterceptor):
    """Listed after CheckoutInterceptor, so its refusal is an envelope in the RPC's log line."""

    def __init__(self, table: dict[str, frozenset[str]] = CALLERS) -> None:
        self._table = table

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        method = details.method
        allowed = allowed_callers(method, self._table)
        if handler is None or ANYONE in allowed:
            return handler
        if handler.unary_unary is None:
            return None  # a streaming RPC open only to some callers: none exists; fail closed (UNIMPLEMENTED)
        return grpc.unary_unary_rpc_method_handler(
            self._checked(method, allowed, handler.unary_unary),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    @staticmethod
    def _checked(method: str, allowed: frozenset[str], behaviour: Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]
                 ) -> Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]:
        async def check(request: Any, context: grpc.aio.ServicerContext) -> Any:
            identity = peer_identity(context)
            if identity_name(identity) not in allowed:
                _log.warning("caller refused", extra={"method": method, "peer": identity or "(no SPIFFE id)"})
                raise CheckoutError(ErrorCode.NOT_ALLOWED, "this caller may not call this RPC",
                                    suggested_action="call the public API through the edge")
            return await behaviour(request, context)

        return check
