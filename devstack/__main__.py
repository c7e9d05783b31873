"""`python -m devstack {run,stop,status,servers,certs}`: see commands.py."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from devstack import commands
from devstack.servers import ServerPorts

PROJECT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__)
    parser.add_argument(
        "--base-dir", type=Path, default=PROJECT,
        help="project root; state goes in BASE_DIR/.run (default: %(default)s)",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="servers, migrations, services; Ctrl-C stops everything")
    run.add_argument(
        "--server-ports", type=_ports, default=None, metavar="PG,REDIS,NATS",
        help="the embedded servers' ports instead of 55432,56379,54222 (a second stack on one machine)",
    )
    sub.add_parser("stop", help="stop what `run` or `servers` recorded (from any shell)")
    sub.add_parser("status", help="one line per recorded process: alive or dead")
    servers = sub.add_parser("servers", help="only PostgreSQL, Redis and NATS; block")
    servers.add_argument(
        "--env-file", type=Path, required=True, help="where to write the KEY=value URLs"
    )
    servers.add_argument(
        "--free-ports", action="store_true",
        help="embedded servers on free ports instead of 55432/56379/54222",
    )
    certs = sub.add_parser("certs", help="the development CA and every process's certificate (what `run` issues), "
                                         "made or renewed as needed")
    certs.add_argument("--dir", type=Path, help="where (default: BASE_DIR/.run/certs)")
    args = parser.parse_args(argv)
    base_dir: Path = args.base_dir.resolve()
    if args.command == "run":
        return commands.run(base_dir, args.server_ports)
    if args.command == "stop":
        return commands.stop(base_dir)
    if args.command == "status":
        return commands.status(base_dir)
    if args.command == "certs":
        return commands.certificates(base_dir, args.dir)
    return commands.servers(base_dir, args.env_file.resolve(), any_ports=args.free_ports)


def _ports(text: str) -> ServerPorts:
    postgres, redis, nats = (int(part) for part in text.split(","))
    return ServerPorts(postgres=postgres, redis=redis, nats=nats)


if __name__ == "__main__":
    sys.exit(main())
