"""Base backups for point-in-time recovery: `pg_basebackup` (its WAL streamed into it, so each
backup restores on its own), a record of when it finished and where the server archives its WAL,
and pruning of backups and of the WAL no kept backup needs.

    <backups>/<UTC stamp>/data          the copy of the data directory
    <backups>/<UTC stamp>/backup.json   finished_at, server version, WAL archive, whether archiving was on
"""

from __future__ import annotations

import datetime
import json
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from devstack import wal_archive

MANIFEST = "backup.json"
_START_WAL = re.compile(r"^START WAL LOCATION: .* \(file ([0-9A-F]{24})\)$", re.M)


@dataclass(frozen=True)
class BaseBackup:
    path: Path
    finished_at: datetime.datetime  # the server's clock once pg_basebackup was done: targets after it
    server_version: int  # server_version_num, e.g. 160004
    wal_archive: Path | None  # where the server archives WAL (None: unknown, no PITR past the backup)
    archiving: bool  # archive_mode was on (and an archive command set) when it was taken

    @property
    def data(self) -> Path:
        return self.path / "data"

    def first_wal_segment(self) -> str:
        """The oldest WAL segment a restore of this backup reads (its backup_label)."""
        found = _START_WAL.search((self.data / "backup_label").read_text())
        if found is None:
            raise ValueError(f"no START WAL LOCATION in {self.data / 'backup_label'}")
        return found.group(1)


def libpq_url(database_url: str) -> str:
    """A SQLAlchemy URL (postgresql+psycopg://…) as libpq and the PostgreSQL tools take it."""
    return re.sub(r"^postgresql\+\w+://", "postgresql://", database_url)


def archiving_on(conn: psycopg.Connection) -> bool:
    mode, command, library = conn.execute(
        "SELECT current_setting('archive_mode'), current_setting('archive_command'), "
        "current_setting('archive_library')").fetchone() or ("off", "", "")
    return mode in ("on", "always") and bool(command.strip() or library.strip())


def archive_now(conninfo: str, timeout: float = 60.0) -> str:
    """Close the current WAL segment and wait until the server has archived it, so the archive holds
    every transaction committed so far. Returns the segment's name."""
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
        row = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()
        assert row is not None
        segment = str(row[0])
        deadline = time.monotonic() + timeout
        while True:
            archived, failed = conn.execute(
                "SELECT last_archived_wal, last_failed_wal FROM pg_stat_archiver").fetchone() or (None, None)
            if archived is not None and archived[:24] >= segment:
                return segment
            if time.monotonic() > deadline:
                raise TimeoutError(f"WAL segment {segment} not archived after {timeout:.0f}s "
                                   f"(last archived {archived}, last failed {failed}); see the server's log")
            time.sleep(0.1)


def take(conninfo: str, backups: Path, bin_dir: Path, *, wal_archive: Path | None) -> BaseBackup:
    """A new base backup of the server of `conninfo` under `backups` (pg_basebackup from `bin_dir`)."""
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
        version = int(conn.execute("SHOW server_version_num").fetchone()[0])  # type: ignore[index]
        archiving = archiving_on(conn)
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    path = backups / stamp
    path.mkdir(parents=True)
    argv = [str(bin_dir / "pg_basebackup"), "--dbname", conninfo, "--pgdata", str(path / "data"),
            "--wal-method", "stream", "--checkpoint", "fast", "--label", f"devstack {stamp}", "--no-password"]
    result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=3600)
    if result.returncode != 0:
        shutil.rmtree(path, ignore_errors=True)
        raise RuntimeError(f"pg_basebackup failed with code {result.returncode}: {result.stderr.strip()}")
    with psycopg.connect(conninfo, autocommit=True, connect_timeout=5) as conn:
        finished = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
    backup = BaseBackup(path, finished, version, wal_archive if archiving else None, archiving)
    (path / MANIFEST).write_text(json.dumps({
        "finished_at": finished.isoformat(),
        "server_version": version,
        "wal_archive": str(backup.wal_archive) if backup.wal_archive else None,
        "archiving": archiving,
    }, indent=2) + "\n")
    return backup


def load(path: Path) -> BaseBackup:
    manifest = json.loads((path / MANIFEST).read_text())
    archive = manifest["wal_archive"]
    return BaseBackup(path, datetime.datetime.fromisoformat(manifest["finished_at"]), manifest["server_version"],
                      Path(archive) if archive else None, manifest["archiving"])


def all_backups(backups: Path) -> list[BaseBackup]:
    """Complete backups under `backups`, oldest first (a failed or running one has no manifest yet)."""
    if not backups.is_dir():
        return []
    found = [load(path) for path in backups.iterdir() if (path / MANIFEST).is_file()]
    return sorted(found, key=lambda backup: backup.finished_at)


def prune(backups: Path, keep: int, bin_dir: Path) -> list[Path]:
    """Keep the newest `keep` backups; delete the others and the archived WAL older than the oldest
    kept one needs (pg_archivecleanup). Returns the backups deleted."""
    if keep < 1:
        raise ValueError("keep at least one backup")
    every = all_backups(backups)
    gone, kept = every[:-keep], every[-keep:]
    for backup in gone:
        shutil.rmtree(backup.path)
    oldest = kept[0] if kept else None
    if oldest is not None and oldest.wal_archive is not None and oldest.wal_archive.is_dir():
        first = oldest.first_wal_segment()
        subprocess.run([str(bin_dir / "pg_archivecleanup"), "-x", wal_archive.SUFFIX, str(oldest.wal_archive), first],
                       check=True, capture_output=True, timeout=600)
        # pg_archivecleanup leaves the backup history files (<segment>.<offset>.backup) of older backups
        for history in oldest.wal_archive.glob(f"*.backup{wal_archive.SUFFIX}"):
            if history.name[:24] < first:
                history.unlink()
    return [backup.path for backup in gone]
