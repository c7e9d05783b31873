"""The pure parts of backup and restore: which base backup a target time uses, how a target time is
read, what `make run`'s PostgreSQL is told about archiving, and what a backup's label says."""

from __future__ import annotations

import datetime
import subprocess
from pathlib import Path

import pytest

from devstack import wal_archive
from devstack.backup import BaseBackup, libpq_url
from devstack.restore import choose, parse_target

UTC = datetime.UTC


def backup_at(tmp_path: Path, hour: int) -> BaseBackup:
    return BaseBackup(tmp_path / str(hour), datetime.datetime(2026, 12, 3, hour, tzinfo=UTC), 160004,
                      tmp_path / "wal", True)


def test_a_target_uses_the_newest_backup_finished_before_it(tmp_path: Path) -> None:
    backups = [backup_at(tmp_path, hour) for hour in (8, 9, 10)]
    assert choose(backups, datetime.datetime(2026, 12, 3, 9, 30, tzinfo=UTC)).path.name == "9"
    assert choose(backups, datetime.datetime(2026, 12, 3, 10, tzinfo=UTC)).path.name == "10"
    with pytest.raises(LookupError, match="oldest finished at 2026-12-03T08:00:00"):
        choose(backups, datetime.datetime(2026, 12, 3, 7, 59, tzinfo=UTC))
    with pytest.raises(LookupError, match="no base backup"):
        choose([], datetime.datetime(2026, 12, 3, 7, tzinfo=UTC))


def test_a_target_time_is_iso_8601_and_utc_without_an_offset() -> None:
    assert parse_target("2026-12-03T10:45:00Z") == datetime.datetime(2026, 12, 3, 10, 45, tzinfo=UTC)
    assert parse_target("2026-12-03 10:45:00") == datetime.datetime(2026, 12, 3, 10, 45, tzinfo=UTC)
    assert parse_target("2026-12-03 16:15:00+05:30") == datetime.datetime(2026, 12, 3, 10, 45, tzinfo=UTC)
    with pytest.raises(ValueError):
        parse_target("yesterday")


def test_the_archive_command_compresses_then_renames_and_never_overwrites(tmp_path: Path) -> None:
    archive = tmp_path / "a dir" / "wal"
    archive.mkdir(parents=True)
    settings = dict(arg.split("=", 1) for arg in wal_archive.server_settings(archive)[1::2])
    assert settings["archive_mode"] == "on" and settings["wal_level"] == "replica"
    segment = tmp_path / "000000010000000000000003"
    segment.write_bytes(b"first" + bytes(16 * 1024 * 1024))

    def run(command: str, path: Path) -> int:  # as the server runs it: %p the file's path, %f its name, through sh
        return subprocess.run(["sh", "-c", command.replace("%p", str(path)).replace("%f", segment.name)],
                              check=False).returncode

    assert run(settings["archive_command"], segment) == 0
    segment.write_bytes(b"second")
    assert run(settings["archive_command"], segment) != 0  # already archived: the server must hear of it
    [archived] = archive.iterdir()  # no .partial left
    assert archived.name == segment.name + ".gz" and archived.stat().st_size < 100_000
    restored = tmp_path / "restored"
    assert run(wal_archive.restore_command(archive), restored) == 0
    assert restored.read_bytes() == b"first" + bytes(16 * 1024 * 1024)
    archived.unlink()
    assert run(wal_archive.restore_command(archive), tmp_path / "missing") != 0  # absent: recovery must hear so
    (archive / segment.name).write_bytes(b"plain")  # archived uncompressed, by an external server's own command
    assert run(wal_archive.restore_command(archive), restored) == 0 and restored.read_bytes() == b"plain"


def test_a_backups_first_wal_segment_comes_from_its_label(tmp_path: Path) -> None:
    backup = backup_at(tmp_path, 8)
    backup.data.mkdir(parents=True)
    (backup.data / "backup_label").write_text(
        "START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\nCHECKPOINT LOCATION: 0/2000060\n")
    assert backup.first_wal_segment() == "000000010000000000000002"


def test_database_urls_become_libpq_urls() -> None:
    assert libpq_url("postgresql+psycopg://u:p@h:5/db") == "postgresql://u:p@h:5/db"
    assert libpq_url("postgresql://u@h/db") == "postgresql://u@h/db"
