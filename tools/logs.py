"""`make logs`: follow every log of `make run` (.run/logs/*.log) as readable lines.

    12:04:05.123 order_svc      info  3f2a…c1  rpc  method=/checkout.v1.OrderService/CreateOrder code=0 ms=12.3

The files stay JSON lines (one object per line, common/logs.py); a line that is not JSON (Envoy's,
a crash's traceback) is shown as it is. `--since-start` shows each file from its beginning instead
of its end; `--once` prints what is there and exits (no following).
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time
from collections.abc import Iterator

from devstack.layout import RunDir

ROOT = pathlib.Path(__file__).resolve().parent.parent

_SHOWN = ("ts", "service", "level", "correlation_id", "trace_id", "span_id", "msg", "logger", "exception")
_COLOURS = {"debug": "\033[2m", "info": "", "warning": "\033[33m", "error": "\033[31m", "critical": "\033[31;1m"}
_RESET = "\033[0m"


def readable(line: str, source: str, *, colour: bool = False) -> str:
    """One log line as `time service level trace message key=value…`."""
    try:
        entry = json.loads(line)
    except ValueError:
        entry = None
    if not isinstance(entry, dict):
        return f"{'':12} {source:<14} {line.rstrip()}"
    level = str(entry.get("level", "")).lower()
    when = str(entry.get("ts", ""))[11:23]
    trace = str(entry.get("trace_id") or entry.get("correlation_id") or "-")
    trace = trace if len(trace) <= 12 else f"{trace[:6]}…{trace[-4:]}"
    extra = " ".join(f"{key}={value}" for key, value in entry.items() if key not in _SHOWN)
    text = (f"{when:<12} {str(entry.get('service', source)):<14} {level:<7} {trace:<12} "
            f"{entry.get('msg', '')}{'  ' + extra if extra else ''}")
    if entry.get("exception"):
        text += "\n" + str(entry["exception"])
    return f"{_COLOURS.get(level, '')}{text}{_RESET}" if colour and _COLOURS.get(level) else text


def follow(directory: pathlib.Path, *, from_start: bool, once: bool) -> Iterator[tuple[str, str]]:
    """(source, line) from every *.log in `directory`, as they grow; new files are picked up."""
    offsets: dict[pathlib.Path, int] = {}
    first = True
    while True:
        for path in sorted(directory.glob("*.log")):
            if path not in offsets:
                offsets[path] = 0 if (from_start or not first) else path.stat().st_size
            size = path.stat().st_size
            if size < offsets[path]:  # truncated: a new run
                offsets[path] = 0
            if size == offsets[path]:
                continue
            with path.open("rb") as stream:
                stream.seek(offsets[path])
                chunk = stream.read()
            complete = chunk.rfind(b"\n") + 1  # a half-written last line waits for the next round
            offsets[path] += complete
            for raw in chunk[:complete].decode(errors="replace").splitlines():
                yield path.stem, raw
        first = False
        if once:
            return
        time.sleep(0.25)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--since-start", action="store_true", help="each file from its beginning")
    parser.add_argument("--once", action="store_true", help="print what is there and exit")
    args = parser.parse_args(argv)
    directory = RunDir.for_base(ROOT).logs
    if not directory.is_dir():
        print(f"no logs in {directory}: start the stack with `make run`", file=sys.stderr)
        return 1
    colour = sys.stdout.isatty()
    try:
        for source, line in follow(directory, from_start=args.since_start or args.once, once=args.once):
            print(readable(line, source, colour=colour), flush=True)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
