"""RefundService servicer (checkout.v1.RefundService, through the edge, role admin): admin check →
request → use case (refunds.py) → message. require_admin() comes first, so a caller without the
role learns nothing about which fields would have been wrong. Idempotency-Key arrives as gRPC
metadata (the edge passes HTTP headers through, lower-cased)."""

from __future__ import annotations

from typing import TypeAlias

import grpc

from checkout.v1 import refund_pb2, refund_pb2_grpc
from common.clock import rfc3339
from common.money import format_amount
from common.request_context import require_admin
from payment_svc.refunds import RefundService, RefundView
from payment_svc.webhooks import metadata_values

Context: TypeAlias = grpc.aio.ServicerContext


class RefundApi(refund_pb2_grpc.RefundServiceServicer):
    def __init__(self, service: RefundService) -> None:
        self._service = service

    async def CreateRefund(self, request: refund_pb2.CreateRefundRequest, context: Context) -> refund_pb2.Refund:
        admin = require_admin()
        key = next(iter(metadata_values(context.invocation_metadata()).get("idempotency-key", ())), "")
        return refund_message(await self._service.create_refund(admin, request.order_token, request.amount,
                                                                request.reason, key))

    async def ListRefunds(self, request: refund_pb2.ListRefundsRequest,
                          context: Context) -> refund_pb2.ListRefundsResponse:
        require_admin()
        refunds = await self._service.list_refunds(request.order_token)
        return refund_pb2.ListRefundsResponse(refunds=[refund_message(refund) for refund in refunds])


def refund_message(refund: RefundView) -> refund_pb2.Refund:
    return refund_pb2.Refund(
        refund_id=refund.refund_id, order_token=refund.order_token, amount=format_amount(refund.amount),
        currency=refund.currency, status=refund.status, gateway=refund.gateway,
        gateway_refund_id=refund.gateway_refund_id, reason=refund.reason, created_at=rfc3339(refund.created_at),
    )
