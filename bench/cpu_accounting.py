"""CPU spent over a measurement window: the whole machine's, and each process group's of the stack.

The machine's busy time (/proc/stat: user+nice+system+irq+softirq+steal) counts every process that
ran, however short-lived. The per-group figures are a breakdown of it: a group is the process tree
under one process `make run` started, and its time is, over every process of the tree, its own
user+system time plus that of the children it has reaped (cutime/cstime). A PostgreSQL backend
that exits during the window therefore stays counted in the postmaster that reaped it, and one
forked during the window is counted from its first tick. What the groups and the load generator
do not explain (other processes on the machine, kernel threads, tick rounding) is unattributed.
"""

from __future__ import annotations

import collections
import dataclasses
import time
from collections.abc import Collection, Mapping

import psutil


def _machine_busy() -> tuple[float, float]:
    """The wall clock and the machine's busy seconds, read together."""
    t = psutil.cpu_times()
    return time.perf_counter(), float(t.user + t.nice + t.system + t.irq + t.softirq + t.steal)


def _process_seconds(process: psutil.Process) -> float:
    t = process.cpu_times()
    return float(t.user + t.system + t.children_user + t.children_system)


@dataclasses.dataclass(frozen=True)
class Cpu:
    """CPU seconds: cumulative in a sample, over a window in the difference of two samples."""

    wall: float
    machine: float
    generator: float
    groups: dict[str, float]

    @property
    def unattributed(self) -> float:
        return self.machine - self.generator - sum(self.groups.values())

    def __sub__(self, earlier: Cpu) -> Cpu:
        return Cpu(self.wall - earlier.wall, self.machine - earlier.machine, self.generator - earlier.generator,
                   {name: value - earlier.groups[name] for name, value in self.groups.items()})


def sample(roots: Mapping[str, int], lent: Collection[int] = (), *, closing: bool) -> Cpu:
    """Cumulative CPU seconds of the machine, of the load generator (this process, its threads,
    its reaped children such as wrk, and the `lent` processes of the stack that only serve it,
    e.g. its own PostgreSQL backend) and of each group (the `lent` ones taken out).

    A process reaped by its parent while the tree is being read is missed if it goes between the
    parent's read and its own, and counted twice if it goes between its own read and the parent's.
    An opening sample reads parents first and a closing one children first, so this can only make
    a window's figure larger than the truth, never smaller or negative. For the same reason the
    machine is read first when opening and last when closing: its window holds the others.
    """
    opened = _machine_busy() if not closing else None
    children: dict[int, list[int]] = collections.defaultdict(list)
    for process in psutil.process_iter(["ppid"]):
        children[process.info["ppid"]].append(process.pid)
    generator = _process_seconds(psutil.Process())
    groups: dict[str, float] = {}
    for name, root in roots.items():
        members, queue = [], collections.deque([root])
        while queue:
            members.append(queue.popleft())
            queue.extend(children.get(members[-1], ()))
        total = 0.0
        for pid in reversed(members) if closing else members:
            try:
                seconds = _process_seconds(psutil.Process(pid))
            except psutil.NoSuchProcess:
                if pid == root:
                    raise SystemExit(f"{name} (pid {root}) is gone: its CPU time went with it") from None
                continue  # reaped since the listing: its time is in its parent's children_* fields
            if pid in lent:
                generator += seconds
            else:
                total += seconds
        groups[name] = total
    wall, machine = opened or _machine_busy()
    return Cpu(wall, machine, generator, groups)


def cpu_count() -> int:
    return psutil.cpu_count() or 1
