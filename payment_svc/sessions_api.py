"""The internal PaymentSessions servicer (order_svc → payment_svc, never routed by the edge)."""

from __future__ import annotations

import grpc

from checkout.internal.v1 import payment_sessions_pb2, payment_sessions_pb2_grpc
from checkout.v1 import order_pb2
from payment_svc.commands import open_session_command
from payment_svc.open_session import SessionOpener
from payment_svc.payment_messages import session_message

Context = grpc.aio.ServicerContext
DEADLINE_MARGIN_S = 0.25  # answer a little before the caller gives up, so it gets our 4001


class PaymentSessionsApi(payment_sessions_pb2_grpc.PaymentSessionsServicer):
    def __init__(self, opener: SessionOpener) -> None:
        self._opener = opener

    async def OpenSession(self, request: payment_sessions_pb2.OpenSessionRequest, context: Context) -> order_pb2.PaymentSession:
        command = open_session_command(
            order_token=request.order_token, attempt=request.attempt, amount=request.amount,
            currency=request.currency, gateway=request.gateway, payment_method=request.payment_method,
            return_url=request.return_url, cancel_url=request.cancel_url, user_id=request.user_id,
            description=request.description,
        )
        remaining = context.time_remaining()
        caller_deadline = None if remaining is None else max(0.0, remaining - DEADLINE_MARGIN_S)
        return session_message(await self._opener.open(command, caller_deadline_s=caller_deadline))
