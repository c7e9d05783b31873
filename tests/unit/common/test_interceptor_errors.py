"""What the interceptor answers when the request is at fault: 1000, never a retryable 5000."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from psycopg import errors
from sqlalchemy.exc import DataError

from checkout.v1 import cart_pb2
from common.auth import TokenVerifier
from common.grpc_errors import detail_of
from common.interceptors import CheckoutInterceptor
from common.settings import load_settings


class Aborted(Exception):
    def __init__(self, status: grpc.Status) -> None:
        super().__init__(status.code)
        self.status = status


class FakeContext:
    def invocation_metadata(self) -> tuple[()]:
        return ()

    async def abort_with_status(self, status: grpc.Status) -> None:
        raise Aborted(status)


class FailedCall(grpc.RpcError):
    """Enough of a failed call for rpc_status.from_call."""

    def __init__(self, status: grpc.Status) -> None:
        self._status = status

    def code(self) -> grpc.StatusCode:
        return self._status.code

    def details(self) -> str:
        return self._status.details

    def trailing_metadata(self) -> Any:
        return self._status.trailing_metadata


async def answer(behaviour: Any, request: Any) -> Any:
    handle = CheckoutInterceptor(TokenVerifier(load_settings({})))._wrap("/checkout.v1.CartService/CreateCart", behaviour)
    with pytest.raises(Aborted) as aborted:
        await handle(request, FakeContext())
    return aborted.value.status.code, detail_of(FailedCall(aborted.value.status))


async def test_a_value_the_database_refuses_as_data_is_1000() -> None:
    async def behaviour(request: Any, context: Any) -> Any:
        raise DataError("INSERT …", {}, errors.NumericValueOutOfRange("numeric field overflow"))

    code, detail = await answer(behaviour, cart_pb2.CreateCartRequest())
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    assert detail.code == 1000 and not detail.retryable
    assert list(detail.validation_messages) == ["request: a value is out of range or malformed"]
    assert "Numeric" not in detail.message and "overflow" not in detail.message


async def test_a_control_character_is_1000_and_the_servicer_never_runs() -> None:
    ran = []

    async def behaviour(request: Any, context: Any) -> Any:
        ran.append(request)

    code, detail = await answer(behaviour, cart_pb2.CreateCartRequest(sale_slug="launch\x00week"))
    assert code is grpc.StatusCode.INVALID_ARGUMENT and detail.code == 1000
    assert list(detail.validation_messages) == ["sale_slug: must not contain control characters"]
    assert ran == []
