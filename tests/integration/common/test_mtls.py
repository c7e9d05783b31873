"""Mutual TLS and the caller table on a real grpc.aio server (common/server.py, common/tls.py,
common/callers.py), with certificates of a test CA (devstack/certs.py), GRPC_PLAINTEXT off.

The internal PaymentSessions answers order_svc and refuses every other certificate with
PERMISSION_DENIED (1102, logged with the caller's identity); a client without a certificate, or
with one of another CA, never gets past the handshake; health and reflection answer any
certificate of the CA; a server trusting the old and the new CA (a rollover) accepts clients of
both, and one trusting only the new CA refuses the old."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pathlib
from collections.abc import AsyncIterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from checkout.internal.v1 import payment_sessions_pb2, payment_sessions_pb2_grpc
from checkout.v1 import order_pb2
from common import tls
from common.grpc_errors import detail_of
from common.server import RunningServer, start_server
from common.settings import Settings, load_settings
from devstack import certs

SESSIONS = payment_sessions_pb2.DESCRIPTOR.services_by_name["PaymentSessions"].full_name


class FakeSessions(payment_sessions_pb2_grpc.PaymentSessionsServicer):
    def __init__(self) -> None:
        self.calls = 0

    async def OpenSession(self, request, context):  # type: ignore[no-untyped-def]
        self.calls += 1
        return order_pb2.PaymentSession(order_token=request.order_token, status="pending")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    directory = tmp_path_factory.mktemp("pki")
    certs.ensure_dev_certs(directory, "interns.localhost")
    return directory


def _settings(pki: pathlib.Path, identity: str, ca_file: pathlib.Path | None = None) -> Settings:
    own = certs.pair(pki, identity)
    return load_settings().replace(grpc_plaintext=False, tls_ca_file=str(ca_file or pki / "ca.pem"),
                                   tls_cert_file=str(own.cert), tls_key_file=str(own.key))


@contextlib.asynccontextmanager
async def _payment_server(settings: Settings) -> AsyncIterator[tuple[RunningServer, FakeSessions]]:
    fake = FakeSessions()

    def register(server: grpc.aio.Server) -> list[str]:
        payment_sessions_pb2_grpc.add_PaymentSessionsServicer_to_server(fake, server)
        return [SESSIONS]

    running = await start_server(settings, "127.0.0.1:0", register)
    try:
        yield running, fake
    finally:
        await running.stop(grace=0)


async def _open(channel: grpc.aio.Channel) -> order_pb2.PaymentSession:
    stub = payment_sessions_pb2_grpc.PaymentSessionsStub(channel)
    return await stub.OpenSession(payment_sessions_pb2.OpenSessionRequest(order_token="o-1", attempt=1), timeout=5)


def _as(pki: pathlib.Path, identity: str, port: int, ca_file: pathlib.Path | None = None) -> grpc.aio.Channel:
    """A channel as `identity` (order_svc's own way: common/tls.channel), checking payment_svc."""
    return tls.channel(_settings(pki, identity, ca_file), f"127.0.0.1:{port}", "payment")


async def test_the_allowed_caller_is_served(pki: pathlib.Path) -> None:
    async with _payment_server(_settings(pki, "payment_svc")) as (running, fake):
        async with _as(pki, "order_svc", running.port) as channel:
            answer = await _open(channel)
    assert answer.order_token == "o-1" and fake.calls == 1


@pytest.mark.parametrize("identity", ["edge", "cart_svc", "enrollment_svc", "developer"])
async def test_another_certificate_is_refused_in_the_envelope_and_logged(
        pki: pathlib.Path, identity: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="checkout.callers")
    async with _payment_server(_settings(pki, "payment_svc")) as (running, fake):
        async with _as(pki, identity, running.port) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await _open(channel)
    assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    detail = detail_of(refused.value)
    assert detail is not None and detail.code == 1102 and detail.correlation_id
    assert fake.calls == 0
    [line] = [r for r in caplog.records if r.getMessage() == "caller refused"]
    assert line.peer == f"spiffe://interns/{identity}"  # type: ignore[attr-defined]
    assert line.method == f"/{SESSIONS}/OpenSession"  # type: ignore[attr-defined]


async def test_no_client_certificate_fails_the_handshake(pki: pathlib.Path) -> None:
    async with _payment_server(_settings(pki, "payment_svc")) as (running, fake):
        credentials = grpc.ssl_channel_credentials((pki / "ca.pem").read_bytes())  # trusts the server, shows nothing
        async with grpc.aio.secure_channel(f"127.0.0.1:{running.port}", credentials) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as failed:
                await _open(channel)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as plaintext:
            with pytest.raises(grpc.aio.AioRpcError) as plain:
                await _open(plaintext)
    assert failed.value.code() == grpc.StatusCode.UNAVAILABLE and detail_of(failed.value) is None
    assert plain.value.code() == grpc.StatusCode.UNAVAILABLE
    assert fake.calls == 0


async def test_a_certificate_of_another_ca_fails_the_handshake(pki: pathlib.Path, tmp_path: pathlib.Path) -> None:
    stranger = tmp_path / "stranger"
    certs.ensure_dev_certs(stranger, "interns.localhost")  # its own CA, the same names
    async with _payment_server(_settings(pki, "payment_svc")) as (running, fake):
        own = certs.pair(stranger, "order_svc")
        credentials = grpc.ssl_channel_credentials((pki / "ca.pem").read_bytes(), own.key.read_bytes(),
                                                   own.cert.read_bytes())
        async with grpc.aio.secure_channel(f"127.0.0.1:{running.port}", credentials,
                                           options=[("grpc.ssl_target_name_override", "payment_svc")]) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as failed:
                await _open(channel)
    assert failed.value.code() == grpc.StatusCode.UNAVAILABLE and fake.calls == 0


async def test_a_client_refuses_a_server_certificate_naming_another_service(pki: pathlib.Path) -> None:
    async with _payment_server(_settings(pki, "cart_svc")) as (running, fake):  # cart_svc's certificate
        async with _as(pki, "order_svc", running.port) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as failed:
                await _open(channel)
    assert failed.value.code() == grpc.StatusCode.UNAVAILABLE and fake.calls == 0


async def test_health_and_reflection_answer_any_certificate_of_the_ca(pki: pathlib.Path) -> None:
    async with _payment_server(_settings(pki, "payment_svc")) as (running, _):
        async with _as(pki, "developer", running.port) as channel:
            health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
            stub = reflection_pb2_grpc.ServerReflectionStub(channel)
            replies = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
            listed = [service.name async for reply in replies for service in reply.list_services_response.service]
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    assert SESSIONS in listed and "grpc.health.v1.Health" in listed


async def test_ca_rollover_a_bundle_of_old_and_new_ca_accepts_clients_of_both(pki: pathlib.Path,
                                                                                tmp_path: pathlib.Path) -> None:
    old, new = pki, tmp_path / "new"
    certs.ensure_dev_certs(new, "interns.localhost")
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes((old / "ca.pem").read_bytes() + (new / "ca.pem").read_bytes())
    # the server already has its certificate of the new CA and trusts both
    async with _payment_server(_settings(new, "payment_svc", ca_file=bundle)) as (running, fake):
        for issued_by in (old, new):
            async with _as(issued_by, "order_svc", running.port, ca_file=bundle) as channel:
                assert (await _open(channel)).order_token == "o-1"
        assert fake.calls == 2
    # once the old CA is retired from the bundle, a certificate it issued no longer gets in
    async with _payment_server(_settings(new, "payment_svc")) as (running, fake):
        async with _as(old, "order_svc", running.port, ca_file=bundle) as channel:
            with pytest.raises(grpc.aio.AioRpcError) as failed:
                await _open(channel)
        assert failed.value.code() == grpc.StatusCode.UNAVAILABLE and fake.calls == 0


async def test_without_tls_settings_a_server_refuses_to_start(pki: pathlib.Path) -> None:
    unset = load_settings().replace(grpc_plaintext=False, tls_ca_file="", tls_cert_file="", tls_key_file="")
    with pytest.raises(SystemExit, match="TLS_CA_FILE, TLS_CERT_FILE, TLS_KEY_FILE"):
        await start_server(unset, "127.0.0.1:0", lambda server: [])


async def test_the_container_health_probe_presents_its_certificate_and_checks_the_name(
        pki: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """tools/grpc_health.py, as compose runs it inside payment_svc's container."""
    from tools import grpc_health

    own = certs.process_env(pki, "payment_svc")
    for name, value in {"GRPC_PLAINTEXT": "0", **own}.items():
        monkeypatch.setenv(name, value)
    async with _payment_server(_settings(pki, "payment_svc")) as (running, _):
        address = f"127.0.0.1:{running.port}"
        assert await asyncio.to_thread(grpc_health.main, address, "payment") == 0
        assert await asyncio.to_thread(grpc_health.main, address) == 0  # the address: 127.0.0.1 is in the certificate
        assert await asyncio.to_thread(grpc_health.main, address, "cart") == 1  # not cart_svc's server
        monkeypatch.setenv("GRPC_PLAINTEXT", "1")
        assert await asyncio.to_thread(grpc_health.main, address, "payment") == 1  # plaintext does not get in
