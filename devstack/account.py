"""The account the embedded PostgreSQL runs as: PostgreSQL refuses to run as root."""

from __future__ import annotations

import os
import pwd
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

NOBODY = 65534


@dataclass(frozen=True)
class Account:
    uid: int
    gid: int

    def popen_kwargs(self) -> dict[str, Any]:
        # extra_groups=[] makes Popen call setgroups([]); without it the child keeps root's
        # supplementary groups (e.g. group 0) even after switching uid.
        return {"user": self.uid, "group": self.gid, "extra_groups": []}


def unprivileged_account() -> Account | None:
    """`nobody` when running as root; None means "run as whoever we are"."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam("nobody")
    except KeyError:
        return Account(NOBODY, NOBODY)
    return Account(entry.pw_uid, entry.pw_gid)


def can_traverse(path: Path, account: Account | None) -> bool:
    """Whether `account` can reach `path`: search permission on it and on every ancestor.

    Missing directories are skipped: devstack creates them with mode 0o755.
    """
    if account is None:
        return True
    for directory in (path, *path.parents):
        try:
            info = directory.stat()
        except FileNotFoundError:
            continue
        if info.st_uid == account.uid:
            bit = stat.S_IXUSR
        elif info.st_gid == account.gid:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not info.st_mode & bit:
            return False
    return True


def private_dir(path: Path, account: Account | None) -> Path:
    """Create `path` (mode 0o700) owned by `account`, leaving its parents alone."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    if account is not None:
        info = path.stat()
        if (info.st_uid, info.st_gid) != (account.uid, account.gid):
            os.chown(path, account.uid, account.gid)
    return path
