"""`make traces [TRACE=<trace id>]`: a trace's span tree with timings, from the local trace store
of `make run` (TRACING_DIR, common/trace_store.py: one file per process, the edge's included).

Without a trace id: the last checkout (the newest trace with an order placed, CreateOrder). Each
line: the span's start after the trace's first span, its duration, its process and its name; an
edge span shows the request's method and path. A span whose parent is not in the store (still
queued in its process, or the trace was sampled out there) is printed as a root, marked `?`. A
span linked to another trace (the gateway's webhook request, which is a trace of its own) names
it, and that trace's tree follows.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from common.settings import load_settings
from common.trace_store import StoredSpan, read_spans, traces

CHECKOUT_SPAN = "checkout.v1.OrderService/CreateOrder"


def last_checkout(by_trace: dict[str, list[StoredSpan]]) -> str | None:
    """The trace id of the newest trace with an order placed."""
    newest: tuple[int, str] | None = None
    for trace_id, spans in by_trace.items():
        for span in spans:
            if span.name == CHECKOUT_SPAN and (newest is None or span.start_ns > newest[0]):
                newest = (span.start_ns, trace_id)
    return newest[1] if newest else None


def children(spans: Sequence[StoredSpan]) -> tuple[list[StoredSpan], dict[str, list[StoredSpan]]]:
    """(roots, span id → its children), each list by start time. A span whose parent is missing is a root."""
    ids = {span.span_id for span in spans}
    roots: list[StoredSpan] = []
    kids: dict[str, list[StoredSpan]] = {}
    for span in spans:
        if span.parent_id and span.parent_id in ids:
            kids.setdefault(span.parent_id, []).append(span)
        else:
            roots.append(span)
    return roots, kids


def _label(span: StoredSpan) -> str:
    attributes = span.attributes
    if span.service == "edge":
        method, url = attributes.get("http.method", ""), str(attributes.get("http.url", ""))
        path = url.split("://", 1)[-1]
        path = path[path.find("/"):] if "/" in path else url
        status = attributes.get("http.status_code", "")
        return f"{method} {path} → {status}".strip()
    return span.name


def render(trace_id: str, spans: Sequence[StoredSpan], by_trace: dict[str, list[StoredSpan]] | None = None,
           *, shown: set[str] | None = None) -> list[str]:
    """The tree of one trace, then of each trace its spans link to (once each)."""
    shown = shown if shown is not None else set()
    shown.add(trace_id)
    if not spans:
        return [f"trace {trace_id}: no spans in the store"]
    origin = min(span.start_ns for span in spans)
    total = (max(span.end_ns for span in spans) - origin) / 1e6
    services = sorted({span.service for span in spans})
    lines = [f"trace {trace_id}  {len(spans)} spans  {total:.1f} ms  ({', '.join(services)})",
             f"{'start':>9} {'ms':>8}  {'process':<15} span"]
    roots, kids = children(spans)
    linked: list[str] = []

    def walk(span: StoredSpan, depth: int) -> None:
        mark = "?" if span.parent_id and depth == 0 else ""
        note = ""
        if span.status:
            note += f"  [{span.status}]"
        for link_trace, _ in span.links:
            if link_trace != trace_id:
                note += f"  (linked: trace {link_trace})"
                linked.append(link_trace)
        start = (span.start_ns - origin) / 1e6
        lines.append(f"{start:>9.1f} {span.ms:>8.1f}  {span.service:<15} {'  ' * depth}{mark}{_label(span)}{note}")
        for child in kids.get(span.span_id, ()):
            walk(child, depth + 1)

    for root in roots:
        walk(root, 0)
    for other in linked:
        if by_trace is not None and other not in shown:
            lines.append("")
            lines += render(other, by_trace.get(other, []), by_trace, shown=shown)
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.traces", description=__doc__.split("\n\n")[0])
    parser.add_argument("trace_id", nargs="?", help="a trace id (32 hex digits, as in x-trace-id); default: the last checkout")
    parser.add_argument("--dir", help="the trace store (default: TRACING_DIR)")
    args = parser.parse_args(argv)
    directory = args.dir or load_settings().traces_dir
    by_trace = traces(read_spans(directory))
    trace_id = (args.trace_id or "").strip().lower() or last_checkout(by_trace)
    if not trace_id:
        print(f"no checkout in {directory} yet: place an order (make demo), then run this again", file=sys.stderr)
        return 1
    print("\n".join(render(trace_id, by_trace.get(trace_id, []), by_trace)))
    return 0 if trace_id in by_trace else 1


if __name__ == "__main__":
    sys.exit(main())
