"""The `python -m devstack` commands; each returns the process exit code."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from devstack import certs, ha, pidfiles, probes, roles, stack
from devstack.layout import RunDir
from devstack.ports import free_ports
from devstack.processes import (
    Interrupted,
    ProcessSpec,
    StartupError,
    Supervisor,
    recorded_status,
    status_line,
    stop_recorded,
    tail,
)
from devstack.servers import DEV_PORTS, ServerPorts, start_servers, write_env_file
from devstack.stopflag import StopFlag

LOG_LINES = 30


def run(base_dir: Path, *, highly_available: bool = False, server_ports: ServerPorts | None = None) -> int:
    """Servers, prepare steps, services; then block until SIGINT/SIGTERM. `highly_available`:
    `make run-ha` (devstack/ha.py): its own clustered servers and each service twice. The embedded
    servers of `make run` listen on `server_ports` (default DEV_PORTS)."""
    run_dir = RunDir.for_base(base_dir)
    if not _claim(run_dir):
        return 1
    flag = StopFlag().install()
    supervisor = Supervisor(run_dir, abort=flag.is_set)
    supervisor.record_self()
    try:
        present, env = start_stack(supervisor, base_dir, os.environ, highly_available=highly_available,
                                   server_ports=server_ports)
        print(_ready_line(present, len(supervisor.children), env), flush=True)
        while not flag.wait(0.5):
            for child in supervisor.newly_exited():
                print(
                    f"!! {child.spec.name} (pid {child.popen.pid}) exited unexpectedly with code "
                    f"{child.popen.returncode}; its log: {child.log}",
                    flush=True,
                )
        print("stopping...", flush=True)
        return 0
    except StartupError as error:
        _report(error)
        return 1
    except Interrupted:
        print("interrupted while starting; stopping...", flush=True)
        return 0
    finally:
        supervisor.stop_all()
        supervisor.forget_self()


def start_stack(supervisor: Supervisor, base_dir: Path, environ: Mapping[str, str], *,
                highly_available: bool = False,
                server_ports: ServerPorts | None = None) -> tuple[list[stack.Service], dict[str, str]]:
    """What `run` starts, by `supervisor` (state in its run dir, code from `base_dir`): servers,
    prepare steps, services. Returns the services started and the environment they got."""
    run_dir = supervisor.run_dir
    if highly_available:
        env = {**environ, **ha.start_servers(supervisor, ha.HaPorts.from_env(environ)), "PYTHONUNBUFFERED": "1"}
    else:
        urls = start_servers(supervisor, server_ports or DEV_PORTS, env=environ, fsync=True, archive_wal=True)
        env = {**environ, **urls.as_env(), "PYTHONUNBUFFERED": "1"}
        _print_external(urls.sources, urls.as_env())
    certs_dir = run_dir.root / "certs"
    if certs.ensure_dev_certs(certs_dir, stack.edge_domain(env)):
        supervisor.say(certs.trust_hint(certs_dir, env))
    for step in stack.PREPARE:
        if (base_dir / step.requires).exists():
            supervisor.run_to_completion(ProcessSpec(step.name, _argv(step.argv), env=env, cwd=base_dir))
        else:
            supervisor.say(f"  {step.name:<17} skipped: no {step.requires}")
    every = ha.replicated(stack.services(env), env) if highly_available else stack.services(env)
    every = roles.with_workers(every, env)
    present = [s for s in every if (base_dir / s.requires).exists()]
    for service in every:
        if service not in present:
            supervisor.say(f"  {service.name:<17} skipped: no {service.requires}")
    supervisor.start([_service_spec(s, {**env, **_tls_env(s.name, certs_dir)}, base_dir) for s in present])
    return present, env


def servers(base_dir: Path, env_file: Path, *, any_ports: bool = False) -> int:
    """Only PostgreSQL, Redis and NATS; their URLs go to `env_file` (present only while ready)."""
    run_dir = RunDir.for_base(base_dir)
    if not _claim(run_dir):
        return 1
    env_file.unlink(missing_ok=True)
    flag = StopFlag().install()
    supervisor = Supervisor(run_dir, abort=flag.is_set)
    supervisor.record_self()
    ports = ServerPorts(*free_ports(3)) if any_ports else DEV_PORTS
    try:
        urls = start_servers(supervisor, ports, env=os.environ, fsync=True)
        write_env_file(env_file, urls)
        print(f"ready: URLs in {env_file}", flush=True)
        while not flag.wait(0.5):
            for child in supervisor.newly_exited():
                print(f"!! {child.spec.name} exited unexpectedly; its log: {child.log}", flush=True)
        return 0
    except StartupError as error:
        _report(error)
        return 1
    except Interrupted:
        return 0
    finally:
        env_file.unlink(missing_ok=True)
        supervisor.stop_all()
        supervisor.forget_self()


def certificates(base_dir: Path, directory: Path | None = None) -> int:
    """What `run` issues (devstack/certs.py), e.g. for `make grpcurl` or the compose secrets."""
    where = (directory or RunDir.for_base(base_dir).root / "certs").resolve()
    if certs.ensure_dev_certs(where, stack.edge_domain(os.environ)):
        print(certs.trust_hint(where, os.environ))
    print(f"certificates in {where}: ca.pem, edge-https.pem, and <name>.pem / <name>-key.pem for "
          f"{', '.join(certs.IDENTITIES)}")
    return 0


def stop(base_dir: Path) -> int:
    run_dir = RunDir.for_base(base_dir)
    if not pidfiles.read_all(run_dir):
        print("nothing recorded as running")
        return 0
    stop_recorded(run_dir)
    return 0


def status(base_dir: Path) -> int:
    """Exit 0 if every recorded process is alive (or none is recorded), else 1."""
    entries = recorded_status(RunDir.for_base(base_dir))
    if not entries:
        print("nothing recorded as running")
    for record, alive in entries:
        print(status_line(record.name, record.pid, record.address, "alive" if alive else "dead"))
    return 0 if all(alive for _, alive in entries) else 1


def _claim(run_dir: RunDir) -> bool:
    """Refuse to start twice; clear pid files left by a run that did not stop cleanly."""
    entries = recorded_status(run_dir)
    alive = [record.name for record, is_alive in entries if is_alive]
    if alive:
        print(
            f"devstack: already running ({', '.join(alive)}); `make stop` first",
            file=sys.stderr,
        )
        return False
    for record, _ in entries:
        pidfiles.remove(run_dir, record.name)
    return True


def _argv(argv: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(sys.executable if part == stack.PYTHON else part for part in argv)


def _tls_env(name: str, certs_dir: Path) -> dict[str, str]:
    """Each process's own certificate (.run/certs/, devstack/certs.py); the edge also its HTTPS one."""
    if name == stack.EDGE:
        return certs.edge_env(certs_dir)
    name = ha.identity(name)  # a replica presents its service's certificate
    return certs.process_env(certs_dir, name) if name in certs.IDENTITIES else {}


def _service_spec(service: stack.Service, env: Mapping[str, str], base_dir: Path) -> ProcessSpec:
    ready = probes.http_ok(service.health_url) if service.health_url else None
    return ProcessSpec(
        name=service.name,
        argv=_argv(service.argv),
        env={**env, **service.env},
        cwd=base_dir,
        port=service.port,
        ready=ready,
    )


def _ready_line(present: list[stack.Service], running: int, env: Mapping[str, str]) -> str:
    edge = next((s for s in present if s.name == stack.EDGE), None)
    if edge is not None:
        cart, pay = stack.dedicated_hosts(env)
        tls_port = stack.edge_tls_port(env)
        return (f"ready: http://127.0.0.1:{edge.port}/ and https://localhost:{tls_port}/ (catalog and cart only: "
                f"http://{cart}:{edge.port}/, orders and payments only: http://{pay}:{edge.port}/; "
                f"gRPC: mutual TLS, `make grpcurl ARGS=...`)")
    return (
        f"ready: {running} process{'' if running == 1 else 'es'} up; the edge is not there yet (no "
        f"{stack.EDGE}/__main__.py), so nothing serves http://127.0.0.1:"
        f"{os.environ.get('EDGE_PORT', '8080')}/; Ctrl-C stops"
    )


def _print_external(sources: Mapping[str, str], urls: Mapping[str, str]) -> None:
    keys = {"postgres": "DATABASE_URL", "redis": "REDIS_URL", "nats": "NATS_URL"}
    for kind, source in sources.items():
        if source != "embedded":
            print(f"  {kind:<17} from {keys[kind]}: {urls[keys[kind]]}", flush=True)


def _report(error: StartupError) -> None:
    print(f"!! {error.name}: {error.reason}", file=sys.stderr, flush=True)
    if error.log is not None:
        print(f"--- last {LOG_LINES} lines of {error.log}:", file=sys.stderr)
        print(tail(error.log, LOG_LINES), end="", file=sys.stderr, flush=True)
