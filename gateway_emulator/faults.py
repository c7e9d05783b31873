"""Fault knobs, one set per gateway, settable at start (env/CLI) and at run time.

API faults act on `/v1/...` calls (and `down` also on the checkout page); webhook faults act on
the events a pay/fail produces. See README.md for what each knob does.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

GATEWAYS = ("razorpay", "stripe")


class FaultError(ValueError):
    pass


@dataclasses.dataclass(frozen=True)
class GatewayFaults:
    latency_ms: int = 0  # added to every API call
    error_rate: float = 0.0  # fraction of API calls answered with a 5xx in the gateway's format
    error_statuses: tuple[int, ...] = (500, 502)  # picked at random for an injected error
    error_phase: str = "before"  # "before": nothing happens; "after": the call takes effect,
    #                              then its answer is replaced by the 5xx (a lost response)
    timeout_s: float = 0.0  # hang this long before answering…
    timeout_rate: float = 1.0  # …on this fraction of API calls
    down: bool = False  # the gateway is down: API calls and checkout pages fail
    down_mode: str = (
        "503"  # "503": answer 503 in the gateway's format; "reset": drop the connection
    )
    receipt_idempotent: bool = True  # razorpay only: same receipt → same order (real: new order)
    webhook_drop: float = 0.0  # fraction of events never sent (true = 1.0)
    webhook_drop_events: tuple[str, ...] = ()  # event types never sent, e.g. ["payment.captured"]
    webhook_duplicate: int = 1  # each event is delivered this many times (same id, same body)
    webhook_reorder: bool = False  # deliver a pay/fail's events last-first; shuffle on flush
    webhook_hold: bool = False  # keep events until POST /_emulator/webhooks/flush
    webhook_delay_ms: int = 0  # wait before the first delivery attempt
    refund_reject_rate: float = 0.0  # fraction of refund creates refused at once (400)
    refund_fail_rate: float = 0.0  # fraction of accepted refunds that end failed (refund.failed)
    refund_settle_ms: int = 0  # how long an accepted refund stays pending before it settles

    def updated(self, changes: Mapping[str, Any]) -> GatewayFaults:
        known = {f.name: f for f in dataclasses.fields(self)}
        values: dict[str, Any] = {}
        for name, raw in changes.items():
            if name not in known:
                raise FaultError(f"unknown fault knob {name!r}; known: {sorted(known)}")
            values[name] = _coerce(name, raw)
        return dataclasses.replace(self, **values)

    def to_json(self) -> dict[str, Any]:
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
        }


def _coerce(name: str, raw: Any) -> Any:
    value = raw
    if name in _STRINGS:
        value = str(raw)
    elif isinstance(raw, str):
        try:
            value = json.loads(raw)
        except ValueError:
            raise FaultError(f"{name}: cannot read {raw!r}") from None
    if name in _RATES:
        if isinstance(value, bool):
            value = 1.0 if value else 0.0
        if not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
            raise FaultError(f"{name} must be a number between 0 and 1")
        return float(value)
    if name in _NON_NEGATIVE:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise FaultError(f"{name} must be a non-negative number")
        return int(value) if name in _INTS else float(value)
    if name in _BOOLS:
        if not isinstance(value, bool):
            raise FaultError(f"{name} must be true or false")
        return value
    if name == "webhook_duplicate":
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 20:
            raise FaultError("webhook_duplicate must be an integer from 1 to 20")
        return value
    if name == "error_statuses":
        if not isinstance(value, list) or not value:
            raise FaultError("error_statuses must be a non-empty list of 5xx codes")
        if not all(isinstance(s, int) and 500 <= s <= 599 for s in value):
            raise FaultError("error_statuses must be a non-empty list of 5xx codes")
        return tuple(value)
    if name == "webhook_drop_events":
        if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
            raise FaultError("webhook_drop_events must be a list of event names")
        return tuple(value)
    if name == "error_phase" and value not in ("before", "after"):
        raise FaultError("error_phase must be 'before' or 'after'")
    if name == "down_mode" and value not in ("503", "reset"):
        raise FaultError("down_mode must be '503' or 'reset'")
    return value


_RATES = {"error_rate", "timeout_rate", "webhook_drop", "refund_reject_rate", "refund_fail_rate"}
_INTS = {"latency_ms", "webhook_delay_ms", "refund_settle_ms"}
_NON_NEGATIVE = _INTS | {"timeout_s"}
_BOOLS = {"down", "receipt_idempotent", "webhook_reorder", "webhook_hold"}
_STRINGS = {"error_phase", "down_mode"}


class FaultBook:
    """The faults in force for each gateway; `initial` is what `reset` goes back to."""

    def __init__(self, initial: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self._initial = {g: GatewayFaults() for g in GATEWAYS}
        self._initial = _apply(self._initial, initial or {})
        self._current = dict(self._initial)

    def get(self, gateway: str) -> GatewayFaults:
        return self._current[gateway]

    def apply(self, changes: Mapping[str, Any]) -> None:
        """`{"razorpay": {...}, "stripe": {...}, "all": {...}, "reset": true}`; all or nothing."""
        base = dict(self._initial) if changes.get("reset") else self._current
        self._current = _apply(base, {k: v for k, v in changes.items() if k != "reset"})

    def reset(self) -> None:
        self._current = dict(self._initial)

    def to_json(self) -> dict[str, Any]:
        return {g: f.to_json() for g, f in self._current.items()}


def _apply(
    base: Mapping[str, GatewayFaults], changes: Mapping[str, Any]
) -> dict[str, GatewayFaults]:
    result = dict(base)
    for key, knobs in changes.items():
        if key not in (*GATEWAYS, "all"):
            raise FaultError(f"unknown gateway {key!r}: use razorpay, stripe or all")
        if not isinstance(knobs, Mapping):
            raise FaultError(f"faults for {key} must be an object")
        for gateway in GATEWAYS if key == "all" else (key,):
            result[gateway] = result[gateway].updated(knobs)
    return result


def parse_fault_flag(flag: str) -> tuple[str, str, Any]:
    """`razorpay.latency_ms=200` (CLI) → ("razorpay", "latency_ms", "200")."""
    target, sep, value = flag.partition("=")
    gateway, dot, knob = target.partition(".")
    if not sep or not dot:
        raise FaultError(f"--fault wants GATEWAY.KNOB=VALUE, got {flag!r}")
    return gateway, knob, value
