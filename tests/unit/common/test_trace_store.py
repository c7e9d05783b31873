"""The local trace store (common/trace_store.py), the OTLP receiver that stores the edge's spans
(devstack/trace_receiver.py) and `make traces` (tools/traces.py)."""

from __future__ import annotations

import http.client
import pathlib

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from opentelemetry.sdk.resources import Resource as SdkResource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from common.trace_store import FileSpanExporter, SpanFile, StoredSpan, read_spans, traces
from devstack.trace_receiver import start_in_thread
from tools import traces as tool

T = "4bf92f3577b34da6a3ce929d0e0e4736"


def span(span_id: str, parent: str, name: str, service: str, start_ms: float, end_ms: float, **more) -> StoredSpan:
    return StoredSpan(T, span_id, parent, name, "server", service, int(start_ms * 1e6), int(end_ms * 1e6), **more)


def test_the_sdk_exporter_writes_one_json_line_per_span(tmp_path: pathlib.Path) -> None:
    provider = TracerProvider(resource=SdkResource.create({"service.name": "order_svc"}))
    provider.add_span_processor(SimpleSpanProcessor(FileSpanExporter(tmp_path, "order_svc", max_bytes=1 << 20)))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("outer") as outer, tracer.start_as_current_span("inner", attributes={"n": 1}):
        pass
    provider.shutdown()
    stored = {s.name: s for s in read_spans(tmp_path)}
    assert (tmp_path / "order_svc.jsonl").read_text().count("\n") == 2
    trace_id = format(outer.get_span_context().trace_id, "032x")
    assert stored["inner"].trace_id == stored["outer"].trace_id == trace_id
    assert stored["inner"].parent_id == stored["outer"].span_id and stored["outer"].parent_id == ""
    assert stored["inner"].service == "order_svc" and stored["inner"].attributes == {"n": 1}
    assert stored["outer"].end_ns >= stored["inner"].end_ns >= stored["inner"].start_ns > 0


def test_a_file_past_its_size_is_rotated_once(tmp_path: pathlib.Path) -> None:
    store = SpanFile(tmp_path, "cart_svc", max_bytes=300)
    lines = [span(f"{n:016x}", "", "x", "cart_svc", 0, 1).line() for n in range(12)]
    for line in lines:
        store.append([line])
    kept = [s.span_id for s in read_spans(tmp_path)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cart_svc.jsonl", "cart_svc.jsonl.1"]
    assert sum(p.stat().st_size for p in tmp_path.iterdir()) <= 2 * 300
    assert kept and kept[-1] == f"{11:016x}" and len(kept) < 12  # the newest kept, the oldest gone


def test_half_written_and_foreign_lines_are_skipped(tmp_path: pathlib.Path) -> None:
    good = span("00000000000000aa", "", "ok", "edge", 0, 1)
    (tmp_path / "edge.jsonl").write_text(good.line() + "\n{\"trace_id\": \n\nnot json\n")
    (tmp_path / "notes.txt").write_text(good.line())
    assert list(read_spans(tmp_path)) == [good]


def _request() -> bytes:
    def attribute(key: str, text: str) -> KeyValue:
        return KeyValue(key=key, value=AnyValue(string_value=text))

    root = Span(trace_id=bytes.fromhex(T), span_id=bytes.fromhex("00000000000000e1"), name="ingress", kind=2,
                start_time_unix_nano=1_000_000, end_time_unix_nano=9_000_000,
                attributes=[attribute("http.url", "http://localhost:8080/api/v1/order"),
                            attribute("http.method", "POST"), attribute("http.status_code", "200")])
    request = ExportTraceServiceRequest(resource_spans=[ResourceSpans(
        resource=Resource(attributes=[attribute("service.name", "edge")]),
        scope_spans=[ScopeSpans(spans=[root])])])
    return request.SerializeToString()


def test_the_receiver_stores_the_edges_spans_sent_whole_or_chunked(tmp_path: pathlib.Path) -> None:
    server = start_in_thread(str(tmp_path))
    try:
        body = _request()
        connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=5)
        connection.request("POST", "/v1/traces", body=body, headers={"content-type": "application/x-protobuf"})
        assert connection.getresponse().read() == b""
        connection.request("POST", "/v1/traces", body=iter([body[:10], body[10:]]),
                           headers={"content-type": "application/x-protobuf"}, encode_chunked=True)
        chunked = connection.getresponse()
        assert (chunked.status, chunked.read()) == (200, b"")
        connection.request("POST", "/v1/traces", body=b"\xff\xff\xff")
        refused = connection.getresponse()
        assert (refused.status, refused.read()) == (400, b"")
        connection.close()
    finally:
        server.shutdown()
        server.server_close()
    (stored,) = traces(read_spans(tmp_path))[T]  # the same span twice is kept once
    assert (tmp_path / "edge.jsonl").read_text().count("\n") == 2
    assert (stored.service, stored.name, stored.kind, stored.parent_id) == ("edge", "ingress", "server", "")
    assert stored.ms == 8.0 and stored.attributes["http.url"].endswith("/api/v1/order")


def test_make_traces_prints_the_last_checkouts_tree_with_timings() -> None:
    spans = [
        span("00000000000000e1", "", "ingress", "edge", 0, 240,
             attributes={"http.method": "POST", "http.url": "http://localhost:8080/api/v1/order", "http.status_code": "200"}),
        span("00000000000000a1", "00000000000000e1", tool.CHECKOUT_SPAN, "order_svc", 2, 238),
        span("00000000000000a2", "00000000000000a1", "db.ordering", "order_svc", 3, 17.5),
        span("00000000000000c1", "00000000000000a1", "payment.captured", "payment_svc", 300, 307.5,
             links=(("ffffffffffffffffffffffffffffffff", "00000000000000f1"),), status="error: boom"),
        span("00000000000000b9", "00000000000000zz", "consume checkout.order.paid", "enrollment_svc", 400, 420),
    ]
    webhook = StoredSpan("f" * 32, "00000000000000f1", "", "checkout.v1.PaymentService/RazorpayWebhook", "server",
                         "payment_svc", 0, 50_000_000)
    older = StoredSpan("a" * 32, "00000000000000aa", "", tool.CHECKOUT_SPAN, "server", "order_svc", -5, 0)
    by_trace = traces([*spans, webhook, older])
    assert tool.last_checkout(by_trace) == T
    lines = tool.render(T, by_trace[T], by_trace)
    assert lines[0] == f"trace {T}  5 spans  420.0 ms  (edge, enrollment_svc, order_svc, payment_svc)"
    assert lines[2].split() == ["0.0", "240.0", "edge", "POST", "/api/v1/order", "→", "200"]
    assert lines[3].split() == ["2.0", "236.0", "order_svc", tool.CHECKOUT_SPAN]
    assert lines[4].split() == ["3.0", "14.5", "order_svc", "db.ordering"]
    assert lines[5].split()[:4] == ["300.0", "7.5", "payment_svc", "payment.captured"]
    assert "[error: boom]" in lines[5] and f"(linked: trace {'f' * 32})" in lines[5]
    assert lines[6].split() == ["400.0", "20.0", "enrollment_svc", "?consume", "checkout.order.paid"]  # parent missing
    assert lines[8].startswith(f"trace {'f' * 32}  1 spans") and lines[-1].split()[-1].endswith("/RazorpayWebhook")
    indent = [len(line) - len(line.lstrip()) for line in (lines[3], lines[4])]
    assert lines[4].index("db.ordering") > lines[3].index(tool.CHECKOUT_SPAN) and indent


def test_make_traces_without_a_checkout_says_so(tmp_path: pathlib.Path, capsys) -> None:
    assert tool.main(["--dir", str(tmp_path)]) == 1
    assert "no checkout" in capsys.readouterr().err


def test_with_an_otlp_endpoint_a_process_exports_there_and_keeps_nothing_locally(tmp_path: pathlib.Path) -> None:
    """A process of its own (the tracer provider is set once per process), exporting to the
    receiver as it would to Jaeger or a collector."""
    import subprocess
    import sys

    received, local = tmp_path / "received", tmp_path / "local"
    server = start_in_thread(str(received))
    script = ("from common.settings import process_settings\n"
              "from common import tracing\n"
              "tracing.configure_tracing('order_svc', process_settings())\n"
              "with tracing.span('outer'):\n"
              "    with tracing.span('inner'):\n"
              "        pass\n"
              "tracing.shutdown_tracing()\n")
    env = {"PATH": "/usr/bin:/bin", "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{server.server_address[1]}",
           "TRACING_DIR": str(local)}
    try:
        done = subprocess.run([sys.executable, "-c", script], env=env, cwd=pathlib.Path(__file__).parents[3],
                              capture_output=True, text=True, timeout=60)
    finally:
        server.shutdown()
        server.server_close()
    assert done.returncode == 0, done.stderr
    spans = {s.name: s for s in read_spans(received)}
    assert set(spans) == {"outer", "inner"} and spans["inner"].parent_id == spans["outer"].span_id
    assert spans["inner"].service == "order_svc" and (received / "order_svc.jsonl").exists()
    assert not local.exists()
