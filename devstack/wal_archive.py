"""Continuous WAL archiving for the embedded PostgreSQL of `make run`: the server copies each
finished WAL segment into `<state>/backups/wal` (`<state>` is .run, or the private temp directory
the server lives in when the project is out of its account's reach). With a base backup
(devstack/backup.py) this allows point-in-time recovery (devstack/restore.py)."""

from __future__ import annotations

import shlex
from pathlib import Path

from devstack.account import Account, private_dir

# A segment not yet full is archived after this long anyway: the most a restore can miss on an idle
# server. Each forced switch archives a whole (16 MB) segment, hence not less.
ARCHIVE_TIMEOUT_SECONDS = 300


def archive_dir(state_dir: Path) -> Path:
    return state_dir / "backups" / "wal"


def ensure_archive_dir(state_dir: Path, account: Account | None) -> Path:
    """The archive, writable by the account the server runs as (and by no one else)."""
    return private_dir(archive_dir(state_dir), account)


# Archived files are gzipped: a segment closed early by archive_timeout is mostly zeros. Level 1:
# a full segment of checkout traffic takes 0.18 s of CPU instead of 0.43 s at gzip's default
# (~1.4 ms per checkout of the archiver's CPU) for a file ~20 % larger.
SUFFIX = ".gz"


def server_settings(archive: Path) -> tuple[str, ...]:
    """`postgres` arguments: archive into `archive`, never overwriting a file already there (written
    under a temporary name, then renamed, so a crash never leaves half a segment)."""
    target = f"{shlex.quote(str(archive))}/%f{SUFFIX}"
    command = f"test ! -f {target} && gzip -1 -c %p > {target}.partial && mv {target}.partial {target}"
    return (
        "-c", "wal_level=replica",
        "-c", "archive_mode=on",
        "-c", f"archive_command={command}",
        "-c", f"archive_timeout={ARCHIVE_TIMEOUT_SECONDS}",
    )


def restore_command(archive: Path) -> str:
    """What a recovering server runs to fetch file %f of the archive into %p, gzipped (ours) or not (an
    external server's own archive_command may copy them as they are); failing when absent."""
    source = f"{shlex.quote(str(archive))}/%f"
    return f"{{ test -f {source}{SUFFIX} && gunzip -c {source}{SUFFIX} > %p; }} || cp {source} %p"
