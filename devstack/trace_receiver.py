"""The local OTLP/HTTP receiver of `make run`: Envoy's tracer needs a collector to send its spans
to, and without OTEL_EXPORTER_OTLP_ENDPOINT this is it. It takes `POST /v1/traces`
(ExportTraceServiceRequest, protobuf) and appends each span to TRACING_DIR/<service>.jsonl
(common/trace_store.py; the edge's are `edge.jsonl`), beside the services' own files.

    python -m devstack.trace_receiver      # what make run starts (127.0.0.1:TRACE_RECEIVER_PORT)
"""

from __future__ import annotations

import http.server
import logging
import threading
from collections.abc import Iterator

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from common.logs import configure_logging
from common.settings import process_settings
from common.trace_store import SpanFile, StoredSpan

MAX_BODY = 8 * 1024 * 1024
_KINDS = {1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}
_log = logging.getLogger("checkout.trace_receiver")


def _value(value: AnyValue) -> object:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind in ("string_value", "bool_value", "int_value", "double_value") else ""


def spans_of(request: ExportTraceServiceRequest) -> Iterator[StoredSpan]:
    for resource_spans in request.resource_spans:
        service = next((str(_value(a.value)) for a in resource_spans.resource.attributes if a.key == "service.name"), "")
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                status = ""
                if span.status.code == 2:
                    status = f"error: {span.status.message}" if span.status.message else "error"
                yield StoredSpan(
                    span.trace_id.hex(), span.span_id.hex(), span.parent_span_id.hex(), span.name,
                    _KINDS.get(span.kind, "internal"), service or "unknown", span.start_time_unix_nano,
                    span.end_time_unix_nano, status, {a.key: _value(a.value) for a in span.attributes},
                    tuple((link.trace_id.hex(), link.span_id.hex()) for link in span.links))


class _Files:
    def __init__(self, directory: str, max_bytes: int) -> None:
        self._directory = directory
        self._max_bytes = max_bytes
        self._files: dict[str, SpanFile] = {}
        self._lock = threading.Lock()

    def of(self, service: str) -> SpanFile:
        name = "".join(ch for ch in service if ch.isalnum() or ch in "-_") or "unknown"
        with self._lock:
            if name not in self._files:
                self._files[name] = SpanFile(self._directory, name, max_bytes=self._max_bytes)
            return self._files[name]


def _handler(files: _Files) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self._body()
            if body is None or not self.path.startswith("/v1/traces"):
                self._answer(400 if body is None else 404)
                return
            request = ExportTraceServiceRequest()
            try:
                request.ParseFromString(body)
            except (DecodeError, ValueError, RuntimeError):  # not an export request
                self._answer(400)
                return
            by_service: dict[str, list[str]] = {}
            for span in spans_of(request):
                by_service.setdefault(span.service, []).append(span.line())
            for service, lines in by_service.items():
                files.of(service).append(lines)
            self._answer(200)

        def _body(self) -> bytes | None:
            if self.headers.get("transfer-encoding", "").lower() == "chunked":  # what Envoy sends
                chunks: list[bytes] = []
                total = 0
                while True:
                    size = int(self.rfile.readline().strip().split(b";")[0] or b"0", 16)
                    if size == 0:
                        self.rfile.readline()
                        return b"".join(chunks)
                    total += size
                    if total > MAX_BODY:
                        return None
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            length = int(self.headers.get("content-length") or 0)
            return self.rfile.read(length) if length <= MAX_BODY else None

        def _answer(self, status: int) -> None:
            self.send_response(status)
            self.send_header("content-type", "application/x-protobuf")
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return  # one line per export would drown the log

    return Handler


def receiver(directory: str, host: str, port: int, *, max_bytes: int) -> http.server.ThreadingHTTPServer:
    """A bound receiver (port 0: any free one, `server_address[1]` says which); serve_forever() runs it."""
    server = http.server.ThreadingHTTPServer((host, port), _handler(_Files(directory, max_bytes)))
    server.daemon_threads = True
    return server


def start_in_thread(directory: str, host: str = "127.0.0.1", port: int = 0, *,
                    max_bytes: int = 4 * 1024 * 1024) -> http.server.ThreadingHTTPServer:
    """For tests: a receiver on a thread of its own; `shutdown()` stops it."""
    server = receiver(directory, host, port, max_bytes=max_bytes)
    threading.Thread(target=server.serve_forever, name="trace-receiver", daemon=True).start()
    return server


def main() -> None:
    settings = process_settings()
    configure_logging("trace_receiver", settings.log_level)
    server = receiver(settings.traces_dir, "127.0.0.1", settings.trace_receiver_port,
                      max_bytes=settings.tracing_file_bytes)
    _log.info("receiving the edge's spans", extra={"port": settings.trace_receiver_port, "dir": settings.traces_dir})
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
