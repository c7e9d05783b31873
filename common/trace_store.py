"""The local trace store of `make run`: each process appends its finished spans, as JSON lines, to
TRACING_DIR/<process>.jsonl; the edge's spans come over OTLP to devstack's receiver
(devstack/trace_receiver.py), which writes edge.jsonl the same way. tools/traces.py reads them all.

A file is bounded: past TRACING_FILE_BYTES it becomes <process>.jsonl.1 (the one before is dropped)
and a new one starts, so a process keeps at most twice that. Spans arrive in batches (the SDK's
BatchSpanProcessor, on its own thread): one write per batch, no fsync — a trace store for a
developer, not a ledger.

One line: {"trace_id", "span_id", "parent_id" ("" for a root), "name", "kind", "service",
"start_ns", "end_ns", "status" ("" or "error: …"), "attributes" {…}, "links" [{"trace_id",
"span_id"}]}.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind, StatusCode

SUFFIX = ".jsonl"
_KINDS = {SpanKind.INTERNAL: "internal", SpanKind.SERVER: "server", SpanKind.CLIENT: "client",
          SpanKind.PRODUCER: "producer", SpanKind.CONSUMER: "consumer"}


@dataclasses.dataclass(frozen=True)
class StoredSpan:
    trace_id: str
    span_id: str
    parent_id: str
    name: str
    kind: str
    service: str
    start_ns: int
    end_ns: int
    status: str = ""
    attributes: dict[str, Any] = dataclasses.field(default_factory=dict)
    links: tuple[tuple[str, str], ...] = ()

    @property
    def ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6

    def line(self) -> str:
        return json.dumps({
            "trace_id": self.trace_id, "span_id": self.span_id, "parent_id": self.parent_id, "name": self.name,
            "kind": self.kind, "service": self.service, "start_ns": self.start_ns, "end_ns": self.end_ns,
            "status": self.status, "attributes": self.attributes,
            "links": [{"trace_id": t, "span_id": s} for t, s in self.links],
        }, separators=(",", ":"), default=str)

    @classmethod
    def from_line(cls, text: str) -> StoredSpan:
        raw = json.loads(text)
        return cls(raw["trace_id"], raw["span_id"], raw.get("parent_id") or "", raw["name"], raw.get("kind", ""),
                   raw.get("service", ""), int(raw["start_ns"]), int(raw["end_ns"]), raw.get("status", ""),
                   raw.get("attributes") or {},
                   tuple((link["trace_id"], link["span_id"]) for link in raw.get("links") or ()))


def stored(span: ReadableSpan) -> StoredSpan:
    context = span.context
    assert context is not None
    parent = span.parent
    status = span.status
    error = ""
    if status.status_code is StatusCode.ERROR:
        error = f"error: {status.description}" if status.description else "error"
    service = str(span.resource.attributes.get("service.name", "")) if span.resource else ""
    return StoredSpan(
        format(context.trace_id, "032x"), format(context.span_id, "016x"),
        format(parent.span_id, "016x") if parent is not None and parent.is_valid else "",
        span.name, _KINDS.get(span.kind, "internal"), service, span.start_time or 0, span.end_time or 0, error,
        dict(span.attributes or {}),
        tuple((format(link.context.trace_id, "032x"), format(link.context.span_id, "016x")) for link in span.links),
    )


class SpanFile:
    """Appends lines to <directory>/<name>.jsonl, bounded (see the module's docstring). Thread-safe."""

    def __init__(self, directory: str | os.PathLike[str], name: str, *, max_bytes: int) -> None:
        self.path = pathlib.Path(directory) / f"{name}{SUFFIX}"
        self._max_bytes = max_bytes
        self._lock = threading.Lock()

    def append(self, lines: Sequence[str]) -> None:
        if not lines:
            return
        data = ("\n".join(lines) + "\n").encode()
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                size = self.path.stat().st_size
            except FileNotFoundError:
                size = 0
            if size and size + len(data) > self._max_bytes:
                os.replace(self.path, self.path.with_name(self.path.name + ".1"))
            with self.path.open("ab") as handle:
                handle.write(data)


class FileSpanExporter(SpanExporter):
    """The SDK exporter behind the BatchSpanProcessor when no OTLP endpoint is set."""

    def __init__(self, directory: str | os.PathLike[str], process: str, *, max_bytes: int) -> None:
        self._file = SpanFile(directory, process, max_bytes=max_bytes)

    @property
    def path(self) -> pathlib.Path:
        return self._file.path

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            self._file.append([stored(span).line() for span in spans])
        except OSError:
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


# -- reading ---------------------------------------------------------------------------------------
def span_files(directory: str | os.PathLike[str]) -> list[pathlib.Path]:
    root = pathlib.Path(directory)
    if not root.is_dir():
        return []
    found = [path for path in root.iterdir() if path.name.endswith(SUFFIX) or path.name.endswith(SUFFIX + ".1")]
    # each process's rotated file before its current one: its spans in the order written
    return sorted(found, key=lambda path: (path.name.removesuffix(".1"), not path.name.endswith(".1")))


def read_spans(directory: str | os.PathLike[str]) -> Iterator[StoredSpan]:
    """Every span of the store (unreadable or half-written lines are skipped)."""
    for path in span_files(directory):
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        for line in text.splitlines():
            if not line.strip():
                continue
            try:
                yield StoredSpan.from_line(line)
            except (ValueError, KeyError, TypeError):
                continue


def traces(spans: Iterable[StoredSpan]) -> dict[str, list[StoredSpan]]:
    """Spans by trace id, each trace's spans by start time (a span seen twice is kept once)."""
    grouped: dict[str, dict[str, StoredSpan]] = {}
    for item in spans:
        grouped.setdefault(item.trace_id, {})[item.span_id] = item
    return {trace_id: sorted(found.values(), key=lambda s: (s.start_ns, s.end_ns))
            for trace_id, found in grouped.items()}
