"""A small supervisor: start named processes, wait until ready, report, stop in reverse order."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from devstack import pidfiles, probes
from devstack.account import Account
from devstack.layout import RunDir
from devstack.ports import HOST, port_in_use

GRACE_SECONDS = 10.0


@dataclass(frozen=True)
class ProcessSpec:
    name: str
    argv: tuple[str, ...]
    env: Mapping[str, str] | None = None
    cwd: Path | None = None
    port: int | None = None
    host: str = HOST
    # Default readiness: the port accepts connections (or at once, without a port).
    ready: probes.Probe | None = None
    stop_signal: int = signal.SIGTERM
    account: Account | None = None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}" if self.port is not None else "-"

    def probe(self) -> probes.Probe:
        if self.ready is not None:
            return self.ready
        if self.port is not None:
            return probes.tcp(self.host, self.port)
        return lambda: True


@dataclass
class Child:
    spec: ProcessSpec
    popen: subprocess.Popen[bytes]
    log: Path


class StartupError(Exception):
    def __init__(self, name: str, reason: str, log: Path | None = None) -> None:
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.reason = reason
        self.log = log


class Interrupted(Exception):
    """A stop was requested (SIGINT/SIGTERM) while starting."""


def status_line(name: str, pid: int | str, address: str, state: str) -> str:
    return f"  {name:<17} pid {pid!s:<7} {address:<16} {state}"


def _line(child: Child, state: str) -> str:
    return status_line(child.spec.name, child.popen.pid, child.spec.address, state)


def tail(path: Path, lines: int = 30) -> str:
    try:
        with path.open("r", errors="replace") as handle:
            return "".join(deque(handle, maxlen=lines))
    except OSError as error:
        return f"(cannot read {path}: {error})\n"


class Supervisor:
    def __init__(
        self,
        run_dir: RunDir,
        *,
        grace: float = GRACE_SECONDS,
        out: TextIO | None = sys.stdout,
        abort: Callable[[], bool] = lambda: False,
    ) -> None:
        self.run_dir = run_dir
        self.grace = grace
        self.out = out
        self.abort = abort
        self.children: list[Child] = []
        run_dir.create()

    def say(self, line: str) -> None:
        if self.out is not None:
            print(line, file=self.out, flush=True)

    def record_self(self, name: str = "devstack") -> None:
        """Let `stop` in another shell find this supervisor and ask it to stop its children."""
        pidfiles.write(
            self.run_dir,
            pidfiles.describe(
                name,
                os.getpid(),
                tuple(sys.argv),
                stop_signal=signal.SIGTERM,
                supervisor=True,
            ),
        )

    def forget_self(self, name: str = "devstack") -> None:
        pidfiles.remove(self.run_dir, name)

    def start(self, specs: Sequence[ProcessSpec], timeout: float = 60.0) -> list[Child]:
        """Start all of `specs`, then wait until every one is ready (printing a line each)."""
        started = [self._spawn(spec) for spec in specs]
        pending = list(started)
        deadline = time.monotonic() + timeout
        while pending:
            for child in list(pending):
                if self.abort():
                    raise Interrupted()
                code = child.popen.poll()
                if code is not None:
                    raise StartupError(
                        child.spec.name, f"exited with code {code} while starting", child.log
                    )
                if child.spec.probe()():
                    pending.remove(child)
                    self.say(_line(child, "ready"))
            if pending and time.monotonic() > deadline:
                child = pending[0]
                raise StartupError(child.spec.name, f"not ready after {timeout:.0f}s", child.log)
            if pending:
                time.sleep(0.05)
        return started

    def run_to_completion(self, spec: ProcessSpec, timeout: float = 600.0) -> None:
        """A one-off step (migrations, seed): it must exit 0."""
        began = time.monotonic()
        child = self._spawn(spec)
        try:
            while (code := child.popen.poll()) is None:
                if self.abort():
                    raise Interrupted()
                if time.monotonic() - began > timeout:
                    raise StartupError(spec.name, f"still running after {timeout:.0f}s", child.log)
                time.sleep(0.05)
        finally:
            if child.popen.poll() is None:
                self._stop(child)
            self._forget(child)
        if code != 0:
            raise StartupError(spec.name, f"exited with code {code}", child.log)
        elapsed = time.monotonic() - began
        self.say(status_line(spec.name, child.popen.pid, "-", f"done ({elapsed:.1f}s)"))

    def newly_exited(self) -> list[Child]:
        """Children that exited on their own since the last call (they are forgotten)."""
        gone = [child for child in self.children if child.popen.poll() is not None]
        for child in gone:
            self._forget(child)
        return gone

    def kill(self, name: str) -> ProcessSpec:
        """SIGKILL the child `name` (chaos tests): no grace, no clean-up of its own; returns its
        spec, for `start([spec])` to bring it back."""
        child = next(child for child in self.children if child.spec.name == name)
        try:
            os.kill(child.popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        child.popen.wait()
        self._forget(child)
        self.say(_line(child, "killed"))
        return child.spec

    def stop_all(self) -> None:
        """Stop every child, last started first."""
        while self.children:
            child = self.children[-1]
            if child.popen.poll() is None:
                self._stop(child)
                self.say(_line(child, "stopped"))
            self._forget(child)

    def _spawn(self, spec: ProcessSpec) -> Child:
        if spec.port is not None and port_in_use(spec.port, spec.host):
            raise StartupError(spec.name, f"port {spec.address} is already in use")
        log = self.run_dir.log(spec.name)
        log.parent.mkdir(parents=True, exist_ok=True)
        extra = spec.account.popen_kwargs() if spec.account is not None else {}
        with log.open("wb") as log_file:
            try:
                popen = subprocess.Popen(
                    spec.argv,
                    env=dict(spec.env) if spec.env is not None else None,
                    cwd=spec.cwd,
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    # Own session: a Ctrl-C in the terminal reaches only the supervisor, which then
                    # stops the children in order; the group also lets us kill grandchildren.
                    start_new_session=True,
                    **extra,
                )
            except OSError as error:
                reason = f"cannot start {spec.argv[0]}: {error}"
                raise StartupError(spec.name, reason, log) from error
        child = Child(spec, popen, log)
        self.children.append(child)
        pidfiles.write(
            self.run_dir,
            pidfiles.describe(
                spec.name,
                popen.pid,
                spec.argv,
                stop_signal=spec.stop_signal,
                address=spec.address,
                log=str(log),
            ),
        )
        return child

    def _stop(self, child: Child) -> None:
        terminate(
            child.popen.pid,
            child.spec.stop_signal,
            self.grace,
            gone=lambda: child.popen.poll() is not None,
        )
        child.popen.wait()

    def _forget(self, child: Child) -> None:
        if child in self.children:
            self.children.remove(child)
        pidfiles.remove(self.run_dir, child.spec.name)


def terminate(
    pid: int, stop_signal: int, grace: float, gone: Callable[[], bool], *, group: bool = True
) -> None:
    """Polite signal to the leader, then SIGKILL to whatever is left of its process group.

    `group=False` for a supervisor: it runs in the caller's group (a shell's, make's).
    """
    try:
        os.kill(pid, stop_signal)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + grace
    while not gone() and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        if group:
            # The group id is the leader's pid (start_new_session); the kernel does not hand
            # that number to a new process while any member of the group is still alive.
            os.killpg(pid, signal.SIGKILL)
        elif not gone():
            os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def recorded_status(run_dir: RunDir) -> list[tuple[pidfiles.Record, bool]]:
    return [(record, pidfiles.is_alive(record)) for record in pidfiles.read_all(run_dir)]


def stop_recorded(
    run_dir: RunDir, *, grace: float = GRACE_SECONDS, out: TextIO | None = sys.stdout
) -> list[str]:
    """Stop what the pid files name (for `make stop` in another shell); returns names stopped.

    A supervisor goes first so it can stop its own children in order; anything left after it
    (because it was killed) is stopped directly, newest first. A pid that now belongs to some
    other process is never signalled; its stale files are removed.
    """
    stopped: list[str] = []

    def say(line: str) -> None:
        if out is not None:
            print(line, file=out, flush=True)

    def stop(record: pidfiles.Record, record_grace: float) -> None:
        if pidfiles.is_alive(record):
            terminate(
                record.pid,
                record.stop_signal,
                record_grace,
                gone=lambda: not pidfiles.is_alive(record),
                group=not record.supervisor,
            )
            stopped.append(record.name)
            say(status_line(record.name, record.pid, record.address, "stopped"))
        else:
            state = "not running (stale pid file)"
            say(status_line(record.name, record.pid, record.address, state))
        pidfiles.remove(run_dir, record.name)

    records = pidfiles.read_all(run_dir)
    workers = [record for record in records if not record.supervisor]
    for record in (record for record in records if record.supervisor):
        stop(record, grace * (len(workers) + 1) + 5)
    for record in reversed(pidfiles.read_all(run_dir)):
        stop(record, grace)
    return stopped
