"""Running the emulator inside another program (a pytest process): on its own event loop in a
daemon thread, so synchronous SDK calls from the test never block it."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from .app import Emulator
from .config import DEFAULT_PORT, EmulatorConfig

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def checkout_url(
    gateway_order_id: str,
    *,
    base_url: str | None = None,
    callback_url: str | None = None,
) -> str:
    """The hosted page for a Razorpay order id or a Stripe PaymentIntent id.

    `base_url` defaults to EMULATOR_PUBLIC_URL, else http://127.0.0.1:$GATEWAY_EMULATOR_PORT
    (8090). `callback_url` rides on the link; the page follows it after Pay / Fail only when it
    is on the origin of the URL registered with the order (no open redirect: checkout_page.py).
    """
    base = (
        base_url
        or os.environ.get("EMULATOR_PUBLIC_URL")
        or (f"http://127.0.0.1:{os.environ.get('GATEWAY_EMULATOR_PORT') or DEFAULT_PORT}")
    )
    query = f"?{urlencode({'callback_url': callback_url})}" if callback_url else ""
    return f"{base.rstrip('/')}/checkout/{gateway_order_id}{query}"


class RunningEmulator:
    """A started emulator: `.url`, `.stop()`, and helpers that call its control API."""

    def __init__(
        self, emulator: Emulator, loop: asyncio.AbstractEventLoop, thread: threading.Thread
    ) -> None:
        self.emulator = emulator
        self._loop = loop
        self._thread = thread
        self.url = emulator.url
        self.port = emulator.port
        self.config = emulator.config

    # ---- life cycle ----------------------------------------------------------------------
    def stop(self, timeout: float = 10.0) -> None:
        if not self._thread.is_alive():
            return
        future = asyncio.run_coroutine_threadsafe(self.emulator.stop(), self._loop)
        try:
            future.result(timeout)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)

    def __enter__(self) -> RunningEmulator:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    # ---- control API ---------------------------------------------------------------------
    def checkout_url(self, gateway_order_id: str, callback_url: str | None = None) -> str:
        return self.emulator.checkout_url(gateway_order_id, callback_url)

    def control(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """Call `/_emulator/<path>`; raises RuntimeError with the message on a non-2xx."""
        data = (
            json.dumps(body).encode() if body is not None else (b"{}" if method == "POST" else None)
        )
        request = urllib.request.Request(
            f"{self.url}/_emulator/{path.lstrip('/')}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with _NO_PROXY.open(request, timeout=10) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"{method} {path}: {exc.code} {exc.read().decode()}") from None

    def pay(self, gateway_order_id: str, **options: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.control("POST", f"orders/{gateway_order_id}/pay", options)
        return result

    def fail(self, gateway_order_id: str, **options: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.control("POST", f"orders/{gateway_order_id}/fail", options)
        return result

    def set_faults(self, gateway: str = "all", **knobs: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.control("POST", "faults", {gateway: knobs})
        return result

    def set_webhook_targets(self, **targets: Any) -> dict[str, Any]:
        """razorpay=URL|None, stripe=URL|None, retry_delays=[...], timeout_s=N."""
        result: dict[str, Any] = self.control("POST", "webhooks/targets", targets)
        return result

    def flush_webhooks(self, shuffle: bool | None = None) -> int:
        return int(self.control("POST", "webhooks/flush", {"shuffle": shuffle})["flushed"])

    def reset(self) -> None:
        self.control("POST", "reset")

    def state(self) -> dict[str, Any]:
        result: dict[str, Any] = self.control("GET", "state")
        return result

    def webhooks(self, gateway: str | None = None, order_id: str | None = None) -> dict[str, Any]:
        query = urlencode({k: v for k, v in (("gateway", gateway), ("order_id", order_id)) if v})
        result: dict[str, Any] = self.control("GET", f"webhooks?{query}" if query else "webhooks")
        return result

    def wait_for_webhooks(
        self,
        predicate: Callable[[dict[str, Any]], bool],
        timeout: float = 10.0,
        **filters: Any,
    ) -> dict[str, Any]:
        """Poll `webhooks(**filters)` until `predicate(log)` holds; TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            log = self.webhooks(**filters)
            if predicate(log):
                return log
            if time.monotonic() > deadline:
                raise TimeoutError(f"webhook log never matched: {json.dumps(log)[:2000]}")
            time.sleep(0.02)


def start_emulator(port: int = 0, host: str = "127.0.0.1", **knobs: Any) -> RunningEmulator:
    """Start an emulator in a background thread and return once it accepts connections.

    `knobs` are EmulatorConfig fields (webhook_razorpay_url=…, webhook_retry_delays=(…),
    faults={"razorpay": {...}}, razorpay_key_secret=…). The environment is not read: tests
    get the documented defaults unless they pass something else.
    """
    config = EmulatorConfig().with_changes(port=port, host=host, **knobs)
    loop = asyncio.new_event_loop()
    emulator = Emulator(config)
    ready = threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        asyncio.set_event_loop(loop)

        async def boot() -> None:
            try:
                await emulator.start()
            except BaseException as exc:
                failure.append(exc)
                raise
            finally:
                ready.set()

        boot_task = loop.create_task(boot())
        try:
            loop.run_forever()
        finally:
            del boot_task
            _drain(loop)
            loop.close()

    thread = threading.Thread(target=run, name=f"gateway-emulator-{port}", daemon=True)
    thread.start()
    ready.wait(10)
    if failure or not ready.is_set():
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        raise RuntimeError(f"gateway emulator did not start: {failure[:1]}")
    return RunningEmulator(emulator, loop, thread)


def _drain(loop: asyncio.AbstractEventLoop) -> None:
    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())
