"""Service processes for crash tests: started with an environment, waited for, killed for real."""

from __future__ import annotations

import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from common.faults import FAULT_ENV, TEST_HOOKS_ENV


def fault_env(point: str) -> dict[str, str]:
    """What arms a fault point (common.events.fault_point) in a child process: its name and the
    test switch."""
    return {FAULT_ENV: point, TEST_HOOKS_ENV: "1"}


def inherited_env() -> dict[str, str]:
    """This process's environment without the fault settings: a child is armed only on purpose."""
    return {key: value for key, value in os.environ.items() if key not in (FAULT_ENV, TEST_HOOKS_ENV)}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServiceProcess:
    def __init__(self, module: str, env: dict[str, str], log: pathlib.Path, port: int) -> None:
        self.module, self.port, self.log = module, port, log
        full_env = inherited_env() | env
        self._log_file = log.open("ab")
        self.process = subprocess.Popen([sys.executable, "-m", module], env=full_env, stdout=self._log_file,
                                        stderr=subprocess.STDOUT, start_new_session=True)

    def wait_serving(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.module} exited: {self.log.read_text()[-2000:]}")
            try:
                with grpc.insecure_channel(f"127.0.0.1:{self.port}") as channel:
                    reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=0.5)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.RpcError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.module} did not start: {self.log.read_text()[-2000:]}")

    def wait_killed(self, timeout: float = 20.0) -> int:
        return self.process.wait(timeout)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log_file.close()
