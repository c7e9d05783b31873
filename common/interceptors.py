"""One server interceptor for every RPC: correlation id, caller from the JWT, a JSON log line,
metrics, and the translation of every exception into a status with an ErrorDetail.

Servicers therefore only raise CheckoutError; nothing else ever reaches a client, and no stack
trace leaves the process (it goes to the log, under the correlation id). A text field with a
control character anywhere in a request is 1000 before the servicer runs, and a value PostgreSQL
refuses as data (out of range, malformed) is 1000 too. Anything else is 5000, except an
unreachable PostgreSQL: the contract's retryable 503 (4001) for a dependency that is down.

Each RPC is a SERVER span (common/tracing.py) that continues the caller's trace (`traceparent` in
the metadata: the edge's span, or order_svc's CLIENT span); every log line of the call names it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from sqlalchemy.exc import DataError

from common.auth import TokenVerifier
from common.db import database_unreachable
from common.errors import CheckoutError, ErrorCode, code_for
from common.grpc_errors import to_status
from common.metrics import RPC_HANDLED, RPC_SECONDS
from common.request_context import caller_var, correlation_id_var, new_correlation_id
from common.tracing import SERVER, context_from, mark_error, tracer
from common.validation import control_character_fields, raise_if_any

_log = logging.getLogger("checkout.rpc")
_SKIP = ("/grpc.health.v1.", "/grpc.reflection.")
_MAX_CORRELATION_ID = 128
_DATA_REFUSED = "request: a value is out of range or malformed"


class CheckoutInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, verifier: TokenVerifier) -> None:
        self._verifier = verifier

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        method = details.method
        if handler is None or handler.unary_unary is None or method.startswith(_SKIP):
            return handler
        return grpc.unary_unary_rpc_method_handler(
            self._wrap(method, handler.unary_unary),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def _wrap(self, method: str, behaviour: Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]
              ) -> Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]:
        verifier = self._verifier

        async def handle(request: Any, context: grpc.aio.ServicerContext) -> Any:
            metadata = dict(context.invocation_metadata() or ())
            cid = _clean_correlation_id(metadata.get("x-correlation-id")) or new_correlation_id()
            correlation_id_var.set(cid)
            with tracer().start_as_current_span(method.lstrip("/"), context=context_from(metadata), kind=SERVER,
                                                attributes={"rpc.method": method, "correlation_id": cid},
                                                record_exception=False,
                                                set_status_on_exception=False) as span:
                started = time.perf_counter()
                code = 0
                try:
                    caller_var.set(verifier.caller_from_header(metadata.get("authorization")))
                    raise_if_any(control_character_fields(request))
                    return await behaviour(request, context)
                except CheckoutError as error:
                    code = error.code.spec.code
                    await context.abort_with_status(to_status(error, cid))
                except grpc.aio.AbortError:
                    raise
                except NotImplementedError:
                    # the generated servicer base: an RPC whose issue has not landed yet
                    code = ErrorCode.NOT_IMPLEMENTED.spec.code
                    await context.abort_with_status(to_status(CheckoutError(ErrorCode.NOT_IMPLEMENTED), cid))
                except DataError:
                    # a value the checks let through and PostgreSQL refused (out of range, malformed):
                    # the request's fault, never a retryable 5000
                    code = ErrorCode.VALIDATION_FAILED.spec.code
                    _log.warning("a request value was refused by the database", extra={"method": method}, exc_info=True)
                    await context.abort_with_status(to_status(CheckoutError(
                        ErrorCode.VALIDATION_FAILED, validation_messages=[_DATA_REFUSED]), cid))
                except Exception as error:
                    failure = ErrorCode.GATEWAY_UNAVAILABLE if database_unreachable(error) else ErrorCode.INTERNAL
                    code = failure.spec.code
                    _log.exception("unhandled error", extra={"method": method})
                    await context.abort_with_status(to_status(CheckoutError(failure), cid))
                finally:
                    elapsed = time.perf_counter() - started
                    if code:
                        span.set_attribute("checkout.error_code", code)
                        if code_for(code).spec.http_status >= 500:  # a failure of ours, not a refusal of the request
                            mark_error(span, f"code {code}")
                    RPC_HANDLED.labels(method, str(code)).inc()
                    RPC_SECONDS.labels(method).observe(elapsed)
                    _log.info("rpc", extra={"method": method, "code": code, "ms": round(elapsed * 1000, 2)})

        return handle


def _clean_correlation_id(raw: str | None) -> str:
    """A client-sent id is echoed into logs and bodies: keep it short and printable."""
    if not raw:
        return ""
    cleaned = "".join(ch for ch in raw if ch.isalnum() or ch in "-_.:")
    return cleaned[:_MAX_CORRELATION_ID]
