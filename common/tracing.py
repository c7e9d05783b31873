"""Tracing (OpenTelemetry): one W3C trace per checkout, from the edge's span to the enrollment.

The edge (Envoy) starts or continues the trace and sends `traceparent` to the service it calls;
every service continues it: a SERVER span per RPC (common/interceptors.py), one span per unit of
work (common/uow.py), per Redis call (common/cache.py), per internal gRPC call (CLIENT, with
`traceparent` in the call's metadata), per gateway call (`span("gateway.razorpay.create_order",
kind=CLIENT)`). An event carries the context it was recorded in: the unit of work stores
`traceparent` in the outbox row's `headers`, the relay publishes it (a PRODUCER span, its context
in the NATS message headers) and the consumer continues it (a CONSUMER span).

Where spans go (`configure_tracing`, once per process): over OTLP/HTTP to
OTEL_EXPORTER_OTLP_ENDPOINT when it is set, else as JSON lines into TRACING_DIR/<process>.jsonl
(common/trace_store.py), which `make traces` reads. Either way through a BatchSpanProcessor: the
request path only appends the finished span to a queue; a background thread writes batches.
TRACING=0 leaves the no-op provider: nothing is recorded, but the context still travels.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from common.settings import Settings

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
SCOPE = "checkout"

_PROPAGATOR = TraceContextTextMapPropagator()
_log = logging.getLogger(__name__)
_configured: list[Any] = []  # the process's TracerProvider, once configured

__all__ = ["CLIENT", "CONSUMER", "INTERNAL", "PRODUCER", "SERVER", "Span", "SpanKind", "configure_tracing",
           "context_from", "current_ids", "current_traceparent", "inject", "shutdown_tracing", "span", "tracer"]

SERVER, CLIENT, INTERNAL, PRODUCER, CONSUMER = (SpanKind.SERVER, SpanKind.CLIENT, SpanKind.INTERNAL,
                                                SpanKind.PRODUCER, SpanKind.CONSUMER)


# A proxy until configure_tracing sets the provider, then that provider's tracer: looked up once,
# since get_tracer builds a new Tracer on every call (~10 µs, more than a span).
_TRACER = trace.get_tracer(SCOPE)


def tracer() -> trace.Tracer:
    return _TRACER


def configure_tracing(process: str, settings: Settings) -> None:
    """Install this process's TracerProvider (service.name = `process`) and its exporter. Once per
    process; a second call changes nothing."""
    if _configured or not settings.tracing:
        return
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    exporter: SpanExporter
    if settings.otel_exporter_otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=otlp_traces_url(settings.otel_exporter_otlp_endpoint), timeout=5)
        where = settings.otel_exporter_otlp_endpoint
    else:
        from common.trace_store import FileSpanExporter

        exporter = FileSpanExporter(settings.traces_dir, process, max_bytes=settings.tracing_file_bytes)
        where = str(exporter.path)
    provider = TracerProvider(resource=Resource.create({"service.name": process}),
                              sampler=ParentBased(TraceIdRatioBased(settings.tracing_sample_ratio)))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _configured.append(provider)
    _log.info("tracing", extra={"exporter": where, "sample_ratio": settings.tracing_sample_ratio})


def shutdown_tracing() -> None:
    """Export what is still queued (at a process's end)."""
    for provider in _configured:
        provider.shutdown()


def otlp_traces_url(endpoint: str) -> str:
    """OTEL_EXPORTER_OTLP_ENDPOINT is the collector's base URL; traces go to its /v1/traces."""
    base = endpoint.rstrip("/")
    return base if base.endswith("/v1/traces") else f"{base}/v1/traces"


# -- spans -------------------------------------------------------------------------------------------
@contextlib.contextmanager
def span(name: str, *, kind: SpanKind = SpanKind.INTERNAL, attributes: Mapping[str, Any] | None = None,
         context: Context | None = None, links: list[Link] | None = None) -> Iterator[Span]:
    """A span around the block, current inside it; an exception leaving the block marks it as an
    error (type and message only: no stack trace in a span). `context`: the parent, when it is not
    the current span (a context from `context_from`)."""
    with tracer().start_as_current_span(name, context=context, kind=kind, attributes=attributes, links=links,
                                        record_exception=False, set_status_on_exception=False) as current:
        try:
            yield current
        except BaseException as error:
            if not isinstance(error, GeneratorExit):
                mark_error(current, error)
            raise


def mark_error(current: Span, error: BaseException | str) -> None:
    if not current.is_recording():
        return
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"[:500]
    current.set_status(Status(StatusCode.ERROR, text))


def mark_current_error(error: BaseException | str) -> None:
    """Mark the current span as failed (an error that is handled, not raised through it)."""
    mark_error(trace.get_current_span(), error)


class Scope:
    """A span over an `async with` that is not a generator (the unit of work): `enter` starts it
    and makes it current, `leave` ends it and restores the context."""

    __slots__ = ("span", "_token")

    def __init__(self, name: str, kind: SpanKind = SpanKind.INTERNAL, attributes: Mapping[str, Any] | None = None,
                 ) -> None:
        self.span = tracer().start_span(name, kind=kind, attributes=attributes)
        self._token = otel_context.attach(trace.set_span_in_context(self.span))

    def leave(self, error: BaseException | None = None) -> None:
        if error is not None:
            mark_error(self.span, error)
        self.span.end()
        otel_context.detach(self._token)


# -- context in carriers (gRPC metadata, outbox headers, NATS headers) -----------------------------------
def inject(carrier: MutableMapping[str, str], context: Context | None = None) -> MutableMapping[str, str]:
    """Add `traceparent` (and `tracestate`) of `context` (default: the current one) to `carrier`."""
    _PROPAGATOR.inject(carrier, context=context)
    return carrier


def context_from(carrier: Mapping[str, Any] | None) -> Context | None:
    """The remote parent that `carrier` names (`traceparent`), or None when it names none."""
    if not carrier or not carrier.get(TRACEPARENT):
        return None
    found = _PROPAGATOR.extract({key: str(value) for key, value in carrier.items()
                                 if key in (TRACEPARENT, TRACESTATE)})
    return found if trace.get_current_span(found).get_span_context().is_valid else None


def context_of(traceparent: str) -> Context | None:
    return context_from({TRACEPARENT: traceparent}) if traceparent else None


def current_traceparent() -> str:
    """The current span's context as a `traceparent` value ("" outside any span)."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get(TRACEPARENT, "")


def link_to_current() -> list[Link]:
    """A link to the current span (when it is valid): a span started in another trace keeps the way
    back to the request that started it."""
    context = trace.get_current_span().get_span_context()
    return [Link(context)] if context.is_valid else []


def current_ids() -> tuple[str, str] | None:
    """(trace id, span id) in hex of the current span, for log lines; None outside any span."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


@contextlib.contextmanager
def resumed(traceparent: str | None, name: str, attributes: Mapping[str, Any] | None = None) -> Iterator[None]:
    """Back in a stored trace: a span, child of the span that `traceparent` names, linked to the
    current span (the request that brings the news), current inside the block, so what the block
    records (events: their outbox rows keep its context) continues the stored trace. Without a
    stored context, or when it is the current trace already, the block runs as it is.

    payment_svc keeps the context of the request that opened a payment session with the session;
    the gateway's webhook (a request and a trace of its own) resumes it to record the capture, so
    the order's payment and the enrollment that follows are in the checkout's trace."""
    stored = context_of(traceparent or "")
    current = trace.get_current_span().get_span_context()
    if stored is None or trace.get_current_span(stored).get_span_context().trace_id == current.trace_id:
        yield
        return
    with span(name, context=stored, links=link_to_current(), attributes=attributes):
        yield
