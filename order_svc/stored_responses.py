"""What an idempotency key keeps of a finished request: the Order bytes, or the error's detail,
so that a replay answers exactly what the first request answered."""

from __future__ import annotations

from checkout.v1 import common_pb2, order_pb2
from common.errors import CheckoutError, code_for


def error_body(error: CheckoutError) -> bytes:
    return common_pb2.ErrorDetail(code=error.code.spec.code, message=error.message,
                                  validation_messages=error.validation_messages,
                                  suggested_action=error.suggested_action).SerializeToString()


def replay(response_code: int, body: bytes) -> order_pb2.Order:
    """The stored Order, or the stored error raised again."""
    if response_code == 0:
        return order_pb2.Order.FromString(body)
    detail = common_pb2.ErrorDetail.FromString(body)
    raise CheckoutError(code_for(detail.code), detail.message, validation_messages=list(detail.validation_messages),
                        suggested_action=detail.suggested_action)
