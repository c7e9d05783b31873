"""A CheckoutError as a google.rpc.Status carrying checkout.v1.ErrorDetail."""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import status_pb2
from grpc_status import rpc_status

from checkout.v1 import common_pb2
from common.errors import CheckoutError


def to_status(error: CheckoutError, correlation_id: str) -> grpc.Status:
    detail = common_pb2.ErrorDetail(
        code=error.code.spec.code,
        message=error.message,
        validation_messages=error.validation_messages,
        correlation_id=correlation_id,
        retryable=error.retryable,
        suggested_action=error.suggested_action,
    )
    packed = any_pb2.Any()
    packed.Pack(detail)
    status = status_pb2.Status(code=grpc.StatusCode[error.code.spec.grpc_status].value[0], message=error.message, details=[packed])
    return rpc_status.to_status(status)


def detail_of(error: grpc.aio.AioRpcError | grpc.RpcError) -> common_pb2.ErrorDetail | None:
    """The ErrorDetail of a failed call, for gRPC clients (tests, service-to-service calls)."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    if status is None:
        return None
    for packed in status.details:
        detail = common_pb2.ErrorDetail()
        if packed.Unpack(detail):
            return detail
    return None
