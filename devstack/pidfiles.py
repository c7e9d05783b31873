"""What `run` leaves in `.run/pids` so another shell can stop it.

`NAME.pid` holds just the pid (for humans and shell tools); `NAME.json` holds what is needed to
tell that pid from a later process that reused it.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from devstack.layout import RunDir

# psutil derives create_time from boot time plus clock ticks; allow for rounding.
_SAME_PROCESS_SLACK = 0.5


@dataclass(frozen=True)
class Record:
    name: str
    pid: int
    argv: tuple[str, ...]
    create_time: float
    stop_signal: int
    address: str
    log: str
    supervisor: bool = False


def describe(
    name: str,
    pid: int,
    argv: tuple[str, ...],
    *,
    stop_signal: int,
    address: str = "-",
    log: str = "",
    supervisor: bool = False,
) -> Record:
    return Record(
        name=name,
        pid=pid,
        argv=argv,
        create_time=psutil.Process(pid).create_time(),
        stop_signal=stop_signal,
        address=address,
        log=log,
        supervisor=supervisor,
    )


def write(run_dir: RunDir, record: Record) -> None:
    run_dir.pids.mkdir(parents=True, exist_ok=True)
    _write_atomically(run_dir.pids / f"{record.name}.json", json.dumps(asdict(record), indent=1))
    _write_atomically(run_dir.pids / f"{record.name}.pid", f"{record.pid}\n")


def remove(run_dir: RunDir, name: str) -> None:
    for suffix in (".pid", ".json"):
        (run_dir.pids / f"{name}{suffix}").unlink(missing_ok=True)


def read_all(run_dir: RunDir) -> list[Record]:
    """Every readable record, oldest process first."""
    records: list[Record] = []
    if not run_dir.pids.is_dir():
        return records
    for meta in run_dir.pids.glob("*.json"):
        try:
            data = json.loads(meta.read_text())
            data["argv"] = tuple(data["argv"])
            records.append(Record(**data))
        except (OSError, ValueError, TypeError, KeyError):
            continue
    return sorted(records, key=lambda record: record.create_time)


def is_alive(record: Record) -> bool:
    """True only if the pid is still the very process we started (not a reuse, not a zombie).

    Start time, not the command line, identifies it: a process may exec another program
    (a launcher becoming Envoy) and keep its pid, and that is still ours to stop.
    """
    try:
        process = psutil.Process(record.pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return bool(abs(process.create_time() - record.create_time) < _SAME_PROCESS_SLACK)
    except psutil.Error:
        return False


def _write_atomically(path: Path, text: str) -> None:
    partial = path.with_name(path.name + ".tmp")
    partial.write_text(text)
    os.replace(partial, path)
