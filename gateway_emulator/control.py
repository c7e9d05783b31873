"""`/_emulator/...`: the JSON control API for tests and developers (no auth: bind it to
localhost). See README.md for each endpoint."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from .config import webhook_url
from .faults import FaultError
from .httpserver import Request, Response
from .responses import json_response, parse_json_object
from .settlement import Options, SettlementError

if TYPE_CHECKING:
    from .app import Emulator

_SETTLE = re.compile(r"^/_emulator/orders/([^/]+)/(pay|fail)$")
_REDELIVER = re.compile(r"^/_emulator/webhooks/([^/]+)/redeliver$")


def _error(status: int, message: str) -> Response:
    return json_response(status, {"error": {"message": message}})


class Control:
    def __init__(self, emulator: Emulator) -> None:
        self._emulator = emulator

    async def handle(self, request: Request) -> Response:
        method, path = request.method, request.path.rstrip("/")
        if method == "GET":
            return self._get(request, path)
        if method != "POST":
            return _error(405, "use GET or POST")
        body = parse_json_object(request.body)
        if body is None:
            return _error(400, "body must be a JSON object")
        try:
            return await self._post(path, body)
        except (FaultError, SettlementError, ValueError, TypeError) as exc:
            status = exc.status if isinstance(exc, SettlementError) else 400
            return _error(status, str(exc))

    def _get(self, request: Request, path: str) -> Response:
        emulator = self._emulator
        if path == "/_emulator/health":
            return json_response(200, {"status": "ok"})
        if path == "/_emulator/state":
            return json_response(200, emulator.state())
        if path == "/_emulator/faults":
            return json_response(200, emulator.faults.to_json())
        if path == "/_emulator/webhooks":
            log = emulator.dispatcher.log(
                request.query_value("gateway"), request.query_value("order_id")
            )
            return json_response(200, log)
        if path == "/_emulator/requests":
            return json_response(
                200, {"requests": list(emulator.api_log), "in_flight": list(emulator.in_flight)}
            )
        return _error(404, f"no control endpoint GET {path}")

    async def _post(self, path: str, body: dict[str, Any]) -> Response:
        emulator = self._emulator
        if match := _SETTLE.match(path):
            options = Options.from_json(body)
            outcome = emulator.settlement.settle(match.group(1), match.group(2) == "pay", options)
            return json_response(200, outcome.to_json())
        if path == "/_emulator/faults":
            emulator.faults.apply(body)
            return json_response(200, emulator.faults.to_json())
        if path == "/_emulator/reset":
            await emulator.reset()
            return json_response(200, {"status": "reset"})
        if path == "/_emulator/webhooks/targets":
            return json_response(200, self._targets(body))
        if path == "/_emulator/webhooks/flush":
            sent = emulator.dispatcher.flush(body.get("shuffle"))
            return json_response(200, {"flushed": sent})
        if match := _REDELIVER.match(path):
            event = emulator.dispatcher.redeliver(match.group(1))
            if event is None:
                return _error(404, f"no webhook event {match.group(1)!r}")
            return json_response(200, event.summary())
        return _error(404, f"no control endpoint POST {path}")

    def _targets(self, body: dict[str, Any]) -> dict[str, Any]:
        dispatcher = self._emulator.dispatcher
        unknown = set(body) - {"razorpay", "stripe", "retry_delays", "timeout_s"}
        if unknown:
            raise ValueError(f"unknown field(s) {sorted(unknown)}")
        for gateway in ("razorpay", "stripe"):
            if gateway in body:
                value = body[gateway]
                dispatcher.targets[gateway] = webhook_url(value) if isinstance(value, str) else None
        if "retry_delays" in body:
            delays = tuple(float(d) for d in body["retry_delays"])
            if any(d < 0 for d in delays):
                raise ValueError("retry_delays must not be negative")
            dispatcher.retry_delays = delays
        if "timeout_s" in body:
            dispatcher.set_timeout(float(body["timeout_s"]))
        return self._emulator.webhook_settings()
