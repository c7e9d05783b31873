"""common/tracing.py and what uses it without a server: log lines name the current span, an event
keeps the context it was recorded in, the relay's headers carry its PRODUCER span, a stored
context is resumed (child of it, linked to the current request), bad carriers are ignored."""

from __future__ import annotations

import datetime
import json
import logging
from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from common import tracing
from common.logs import JsonFormatter
from common.outbox_relay import OutboxRow, event_headers, publish_span
from common.uow import Recorder

_EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module", autouse=True)
def provider() -> Iterator[None]:
    """A recording provider for this module (the process's global one, set once)."""
    current = trace.get_tracer_provider()
    if not isinstance(current, TracerProvider):
        own = TracerProvider()
        own.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        trace.set_tracer_provider(own)
    elif _EXPORTER not in [getattr(p, "span_exporter", None) for p in current._active_span_processor._span_processors]:
        current.add_span_processor(SimpleSpanProcessor(_EXPORTER))
    yield


@pytest.fixture
def finished() -> Iterator[InMemorySpanExporter]:
    _EXPORTER.clear()
    yield _EXPORTER


def ids(span: trace.Span) -> tuple[str, str]:
    context = span.get_span_context()
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


def by_name(exporter: InMemorySpanExporter, name: str) -> ReadableSpan:
    (found,) = [span for span in exporter.get_finished_spans() if span.name == name]
    return found


def log_line(message: str) -> dict:
    record = logging.LogRecord("checkout.test", logging.INFO, __file__, 1, message, (), None)
    return json.loads(JsonFormatter("order_svc").format(record))


def test_a_log_line_names_the_current_span_and_only_inside_one() -> None:
    assert "trace_id" not in log_line("outside") and "span_id" not in log_line("outside")
    with tracing.span("work") as current:
        entry = log_line("inside")
    assert (entry["trace_id"], entry["span_id"]) == ids(current)


def test_an_event_keeps_the_traceparent_of_the_span_it_was_recorded_in() -> None:
    recorder = Recorder()
    outside = recorder.publish("checkout.order.paid", "o-1", {"order_token": "o-1"})
    with tracing.span("use case") as current:
        inside = recorder.publish("checkout.order.paid", "o-1", {"order_token": "o-1"})
    trace_id, span_id = ids(current)
    assert outside.traceparent == ""
    assert inside.traceparent.split("-")[:3] == ["00", trace_id, span_id]


def test_the_relay_publishes_in_a_producer_span_child_of_the_recording_span(finished) -> None:
    with tracing.span("use case") as recording:
        traceparent = tracing.current_traceparent()
    row = OutboxRow("0b7e…", 7, "o-1", "checkout.order.paid", {}, {"correlation_id": "c-1", "traceparent": traceparent},
                    datetime.datetime.now(datetime.UTC))
    span = publish_span(row, "e1.checkout.order.paid")
    assert span is not None
    headers = event_headers(row, span)
    span.end()
    published = by_name(finished, "publish checkout.order.paid")
    assert published.kind is trace.SpanKind.PRODUCER
    assert published.parent is not None and published.parent.span_id == recording.get_span_context().span_id
    trace_id, _ = ids(recording)
    assert headers["traceparent"].split("-")[:3] == ["00", trace_id, format(published.context.span_id, "016x")]
    assert headers["X-Correlation-Id"] == "c-1" and headers["Nats-Msg-Id"] == "0b7e…"
    untraced = OutboxRow("1", 8, "o-1", "checkout.order.paid", {}, {"correlation_id": "c-1"}, row.created_at)
    assert publish_span(untraced, "checkout.order.paid") is None
    assert "traceparent" not in event_headers(untraced, None)


def test_resumed_goes_back_into_the_stored_trace_linked_to_the_current_request(finished) -> None:
    with tracing.span("open session") as opening:
        stored = tracing.current_traceparent()
    recorder = Recorder()
    with tracing.span("webhook") as webhook:
        with tracing.resumed(stored, "payment.captured"):
            event = recorder.publish("checkout.payment.captured", "o-1", {})
    captured = by_name(finished, "payment.captured")
    assert captured.context.trace_id == opening.get_span_context().trace_id
    assert captured.parent is not None and captured.parent.span_id == opening.get_span_context().span_id
    assert [(link.context.trace_id, link.context.span_id) for link in captured.links] == [
        (webhook.get_span_context().trace_id, webhook.get_span_context().span_id)]
    assert event.traceparent.split("-")[1:3] == [ids(opening)[0], format(captured.context.span_id, "016x")]


def test_resumed_without_a_stored_context_or_in_the_same_trace_adds_no_span(finished) -> None:
    with tracing.span("request") as request:
        same_trace = tracing.current_traceparent()
        for stored in (None, "", "00-garbage", same_trace):
            with tracing.resumed(stored, "payment.captured"):
                assert trace.get_current_span() is request
    assert [span.name for span in finished.get_finished_spans()] == ["request"]


@pytest.mark.parametrize("carrier", [None, {}, {"traceparent": ""}, {"traceparent": "00-xyz"},
                                     {"traceparent": f"00-{'0' * 32}-{'0' * 16}-01"}])
def test_a_carrier_without_a_valid_traceparent_names_no_parent(carrier) -> None:
    assert tracing.context_from(carrier) is None


def test_a_span_left_by_an_exception_is_an_error_without_a_stack_trace(finished) -> None:
    with pytest.raises(RuntimeError), tracing.span("failing"):
        raise RuntimeError("the database is down")
    failing = by_name(finished, "failing")
    assert failing.status.status_code is trace.StatusCode.ERROR
    assert failing.status.description == "RuntimeError: the database is down"
    assert not failing.events  # no exception event, no traceback


def test_otlp_endpoint_is_a_base_url() -> None:
    assert tracing.otlp_traces_url("http://jaeger:4318") == "http://jaeger:4318/v1/traces"
    assert tracing.otlp_traces_url("http://jaeger:4318/") == "http://jaeger:4318/v1/traces"
    assert tracing.otlp_traces_url("http://c:4318/v1/traces") == "http://c:4318/v1/traces"


class _Context:
    def __init__(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self._metadata = metadata

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata

    async def abort_with_status(self, status: object) -> None:
        raise RuntimeError("aborted")


async def test_an_rpc_is_a_server_span_continuing_the_callers_trace(finished) -> None:
    from checkout.v1 import cart_pb2
    from common.auth import TokenVerifier
    from common.errors import CheckoutError, ErrorCode
    from common.interceptors import CheckoutInterceptor
    from common.settings import load_settings

    interceptor = CheckoutInterceptor(TokenVerifier(load_settings({})))
    caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    seen: list[str] = []

    async def serve(request: object, context: object) -> object:
        seen.append(tracing.current_traceparent())
        return cart_pb2.Cart()

    await interceptor._wrap("/checkout.v1.CartService/GetCart", serve)(
        cart_pb2.GetCartRequest(), _Context((("traceparent", caller), ("x-correlation-id", "c-9"))))
    rpc = by_name(finished, "checkout.v1.CartService/GetCart")
    assert rpc.kind is trace.SpanKind.SERVER and rpc.parent is not None and rpc.parent.is_remote
    assert format(rpc.context.trace_id, "032x") == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert format(rpc.parent.span_id, "016x") == "00f067aa0ba902b7"
    assert seen[0].split("-")[2] == format(rpc.context.span_id, "016x")  # the servicer runs inside it
    assert rpc.attributes["correlation_id"] == "c-9" and rpc.status.status_code is trace.StatusCode.UNSET

    for failure, errored in ((ErrorCode.CART_NOT_FOUND, False), (ErrorCode.INTERNAL, True)):
        finished.clear()

        async def refuse(request: object, context: object, failure: ErrorCode = failure) -> object:
            raise CheckoutError(failure)

        with pytest.raises(RuntimeError, match="aborted"):
            await interceptor._wrap("/checkout.v1.CartService/GetCart", refuse)(cart_pb2.GetCartRequest(), _Context(()))
        rpc = by_name(finished, "checkout.v1.CartService/GetCart")
        assert rpc.parent is None and rpc.attributes["checkout.error_code"] == failure.spec.code
        assert (rpc.status.status_code is trace.StatusCode.ERROR) is errored, failure
