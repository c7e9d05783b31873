"""Running a synchronous SDK call off the event loop, on the gateway's own thread pool.

One pool per gateway is a bulkhead: a gateway whose calls hang fills only its own threads, so the
other gateway (the fallback) still has all of its own. The event loop never blocks.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class BlockingRunner:
    def __init__(self, name: str, threads: int) -> None:
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix=f"gw-{name}")

    async def run(self, call: Callable[..., T], /, *args: object, **kwargs: object) -> T:
        context = contextvars.copy_context()  # keep the correlation id in the SDK thread's logs
        bound = functools.partial(context.run, call, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._pool, bound)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
