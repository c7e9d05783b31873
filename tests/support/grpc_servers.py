"""An in-process gRPC server of one service on a free port, and a channel to it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import grpc

from common.settings import Settings
from common.server import Register, start_server


@contextlib.asynccontextmanager
async def serving_at(settings: Settings, register: Register) -> AsyncIterator[tuple[str, grpc.aio.Channel]]:
    running = await start_server(settings, "127.0.0.1:0", register)
    address = f"127.0.0.1:{running.port}"
    channel = grpc.aio.insecure_channel(address)
    try:
        yield address, channel
    finally:
        await channel.close()
        await running.stop(grace=0)


@contextlib.asynccontextmanager
async def serving(settings: Settings, register: Register) -> AsyncIterator[grpc.aio.Channel]:
    async with serving_at(settings, register) as (_, channel):
        yield channel
