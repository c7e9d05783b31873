"""`make grpcurl ARGS=...` against a service that requires mutual TLS: the developer certificate
lists the services through reflection, checks health and calls the public API; the internal and
admin RPCs refuse it (PERMISSION_DENIED); plaintext does not get in at all. The command is the
Makefile's own (`make -n`), with the certificates of a test CA."""

from __future__ import annotations

import json
import pathlib
import shlex
import subprocess
import sys

import pytest

from devstack import certs
from tests.e2e.conftest import ROOT, Launcher, ServiceProcess

GRPCURL = str(pathlib.Path(sys.executable).parent / "grpcurl")


@pytest.fixture(scope="module")
def cert_dir(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    directory = tmp_path_factory.mktemp("grpcurl") / "certs"
    certs.ensure_dev_certs(directory, "interns.localhost")
    return directory


@pytest.fixture(scope="module")
def mtls_cart(module_launcher: Launcher, cert_dir: pathlib.Path) -> ServiceProcess:
    service = module_launcher.service("cart_svc", env={"GRPC_PLAINTEXT": "0", **certs.process_env(cert_dir, "cart_svc")},
                                      wait=False)
    service.wait_serving(credentials=certs.process_env(cert_dir, "developer"))
    return service


def make_grpcurl(cert_dir: pathlib.Path, *args: str) -> subprocess.CompletedProcess[str]:
    """What `make grpcurl ARGS="<args>"` runs (make -n prints it; the venv's grpcurl runs it)."""
    printed = subprocess.run(["make", "-n", "-s", "grpcurl", f"CERTS={cert_dir}", f"ARGS={shlex.join(args)}"],
                             cwd=ROOT, check=True, capture_output=True, text=True, timeout=20).stdout
    [line] = [line for line in printed.splitlines() if "grpcurl -cacert" in line]
    argv = shlex.split(line)
    assert argv[0].endswith("/grpcurl") and argv[1:7] == [
        "-cacert", f"{cert_dir}/ca.pem", "-cert", f"{cert_dir}/developer.pem", "-key", f"{cert_dir}/developer-key.pem"]
    return subprocess.run([GRPCURL, *argv[1:]], capture_output=True, text=True, timeout=20)


def test_reflection_health_and_a_public_call_with_the_developer_certificate(mtls_cart: ServiceProcess,
                                                                           cert_dir: pathlib.Path) -> None:
    listed = make_grpcurl(cert_dir, mtls_cart.address, "list")
    assert listed.returncode == 0, listed.stderr
    assert {"checkout.v1.CatalogService", "checkout.internal.v1.CartCheckout", "grpc.health.v1.Health"} <= set(
        listed.stdout.split())
    health = make_grpcurl(cert_dir, mtls_cart.address, "grpc.health.v1.Health/Check")
    assert json.loads(health.stdout) == {"status": "SERVING"}
    ping = make_grpcurl(cert_dir, "-d", "{}", mtls_cart.address, "checkout.v1.CatalogService/Ping")
    assert json.loads(ping.stdout) == {"service": "cart_svc"}


@pytest.mark.parametrize("method", ["checkout.internal.v1.CartCheckout/ConvertCart",
                                    "checkout.v1.AdminService/CreateCoupon"])
def test_internal_and_admin_rpcs_refuse_the_developer(mtls_cart: ServiceProcess, cert_dir: pathlib.Path,
                                                      method: str) -> None:
    refused = make_grpcurl(cert_dir, "-d", "{}", mtls_cart.address, method)
    assert refused.returncode != 0
    assert "PermissionDenied" in refused.stderr and "1102" in refused.stderr, refused.stderr


def test_plaintext_does_not_get_in(mtls_cart: ServiceProcess) -> None:
    plain = subprocess.run([GRPCURL, "-plaintext", mtls_cart.address, "list"], capture_output=True, text=True, timeout=20)
    assert plain.returncode != 0
