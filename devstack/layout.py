"""Where devstack keeps its state: `<project>/.run/{logs,pids,...}`."""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunDir:
    root: Path

    @classmethod
    def for_base(cls, base_dir: Path) -> RunDir:
        return cls(base_dir.resolve() / ".run")

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def pids(self) -> Path:
        return self.root / "pids"

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def create(self) -> None:
        # 0o755 so an unprivileged server can reach its own subdirectory (see account.py).
        for directory in (self.root, self.logs, self.pids):
            directory.mkdir(mode=0o755, parents=True, exist_ok=True)

    def private_tmp(self) -> Path:
        """A directory outside the project for when the project itself is unreachable.

        One per run dir (the hash) so tests in temp dirs never share data with `make run`.
        """
        top = Path(tempfile.gettempdir()) / f"checkout-devstack-{os.getuid()}"
        top.mkdir(mode=0o755, exist_ok=True)
        # /tmp is shared: refuse a directory (or symlink) that someone else planted there.
        info = top.lstat()
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
            raise RuntimeError(f"{top} is not a directory owned by uid {os.getuid()}")
        digest = hashlib.sha256(str(self.root).encode()).hexdigest()[:12]
        mine = top / digest
        mine.mkdir(mode=0o755, exist_ok=True)
        return mine
