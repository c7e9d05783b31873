"""`python -m devstack {run,stop,status,servers,certs,backup,restore}`: see commands.py and backup_commands.py."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from devstack import backup_commands, commands
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
    run.add_argument("--ha", action="store_true",
                     help="each service twice behind the edge, three NATS nodes, a PostgreSQL streaming replica")
    run.add_argument(
        "--server-ports", type=_ports, default=None, metavar="PG,REDIS,NATS",
        help="the embedded servers' ports instead of 55432,56379,54222 (a second stack on one machine; "
             "not with --ha, whose servers take HA_* ports)",
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
    backup = sub.add_parser("backup", help="a base backup of DATABASE_URL's server, else of the embedded one")
    backup.add_argument("--wal-archive", type=Path, help="where that server archives its WAL (an external server)")
    backup.add_argument("--keep", type=int, help="then keep only the newest KEEP backups (and the WAL they need)")
    restore = sub.add_parser("restore", help="point-in-time recovery into a new data directory")
    restore.add_argument("--target-time", required=True, help="ISO 8601; without an offset, UTC")
    restore.add_argument("--port", type=int, default=backup_commands.RESTORE_PORT,
                         help="serve the restored copy there until Ctrl-C (default: %(default)s; 0: do not start it)")
    restore.add_argument("--bin-dir", type=Path, help="PostgreSQL binaries of the backup's major version")
    restore.add_argument("--wal-archive", type=Path, help="the WAL archive (default: the backup's)")
    args = parser.parse_args(argv)
    base_dir: Path = args.base_dir.resolve()
    if args.command == "run":
        if args.ha and args.server_ports:
            parser.error("--server-ports is for make run; make run-ha's servers take HA_* ports")
        return commands.run(base_dir, highly_available=args.ha, server_ports=args.server_ports)
    if args.command == "stop":
        return commands.stop(base_dir)
    if args.command == "status":
        return commands.status(base_dir)
    if args.command == "certs":
        return commands.certificates(base_dir, args.dir)
    if args.command == "backup":
        return backup_commands.run_backup(base_dir, wal_archive_dir=args.wal_archive, keep=args.keep)
    if args.command == "restore":
        return backup_commands.run_restore(base_dir, args.target_time, port=args.port or None, bin_dir=args.bin_dir,
                                           wal_archive_dir=args.wal_archive)
    return commands.servers(base_dir, args.env_file.resolve(), any_ports=args.free_ports)


def _ports(text: str) -> ServerPorts:
    postgres, redis, nats = (int(part) for part in text.split(","))
    return ServerPorts(postgres=postgres, redis=redis, nats=nats)


if __name__ == "__main__":
    sys.exit(main())
