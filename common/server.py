"""The grpc.aio server every service runs: interceptors, reflection, health, graceful stop."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from common.auth import TokenVerifier
from common.callers import CallerCheck
from common.interceptors import CheckoutInterceptor
from common.settings import Settings
from common.tls import server_credentials

_log = logging.getLogger(__name__)

Register = Callable[[grpc.aio.Server], Sequence[str]]  # adds servicers, returns full service names


class RunningServer:
    def __init__(self, server: grpc.aio.Server, port: int, health_servicer: health.aio.HealthServicer, services: Sequence[str]):
        self.server = server
        self.port = port
        self._health = health_servicer
        self._services = services

    async def set_serving(self, serving: bool) -> None:
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in ("", *self._services):
            await self._health.set(name, status)

    async def stop(self, grace: float = 5.0) -> None:
        await self.set_serving(False)
        await self.server.stop(grace)


async def start_server(settings: Settings, address: str, register: Register) -> RunningServer:
    """Bind `address` ("host:port"; port 0 picks a free one, for tests) and start serving: mutual
    TLS with the caller table (common/tls.py, common/callers.py), or plaintext under GRPC_PLAINTEXT."""
    credentials = server_credentials(settings)
    interceptors: list[grpc.aio.ServerInterceptor] = [CheckoutInterceptor(TokenVerifier(settings))]
    if credentials is None:
        _log.warning("GRPC_PLAINTEXT: gRPC without TLS, any caller is accepted (development and tests only)")
    else:
        interceptors.append(CallerCheck())  # inside CheckoutInterceptor: a refusal becomes an envelope
    server = grpc.aio.server(
        interceptors=interceptors,
        options=[("grpc.so_reuseport", 0), ("grpc.max_receive_message_length", 1024 * 1024)],
    )
    services = list(register(server))
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection([*services, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    port = server.add_insecure_port(address) if credentials is None else server.add_secure_port(address, credentials)
    if port == 0:
        raise SystemExit(f"could not bind gRPC address {address}")
    await server.start()
    running = RunningServer(server, port, health_servicer, services)
    await running.set_serving(True)
    return running


async def serve_until_signalled(running: RunningServer, on_stop: Sequence[Callable[[], Awaitable[None]]] = ()) -> None:
    """Block until SIGTERM or SIGINT, then stop taking calls, finish the ones in flight, clean up."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    _log.info("serving", extra={"port": running.port})
    await stop.wait()
    _log.info("stopping")
    await running.stop()
    for cleanup in on_stop:
        await cleanup()
