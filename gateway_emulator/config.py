"""The emulator's settings: defaults match the project's development settings
(common/settings.py), the environment overrides them, the CLI overrides the environment."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from typing import Any

from .faults import FaultError

DEFAULT_PORT = 8090
# The Stripe API version stripe-python 16.1 pins; events carry it in `api_version`.
STRIPE_API_VERSION = "2026-10-28.endive"


@dataclasses.dataclass(frozen=True)
class EmulatorConfig:
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    public_url: str | None = None  # base of checkout URLs; default http://host:port
    razorpay_key_id: str = "rzp_test_devkey"
    razorpay_key_secret: str = "dev-key-secret"
    razorpay_webhook_secret: str = "dev-webhook-secret"
    razorpay_account_id: str = "acc_EmulatorDev001"
    stripe_api_key: str = "sk_test_dev"
    stripe_webhook_secrets: tuple[str, ...] = ("dev-stripe-webhook-secret",)
    stripe_api_version: str = STRIPE_API_VERSION
    webhook_razorpay_url: str | None = "http://127.0.0.1:8080/api/v1/webhooks/razorpay"
    webhook_stripe_url: str | None = "http://127.0.0.1:8080/api/v1/webhooks/stripe"
    webhook_retry_delays: tuple[float, ...] = (0.2, 0.5, 1.0, 2.0, 4.0)
    webhook_timeout_s: float = 5.0  # Razorpay wants a 2xx within 5 s
    faults: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    max_body_bytes: int = 1024 * 1024

    def with_changes(self, **changes: Any) -> EmulatorConfig:
        known = {f.name for f in dataclasses.fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise TypeError(f"unknown emulator setting(s): {sorted(unknown)}")
        if "stripe_webhook_secrets" in changes and isinstance(
            changes["stripe_webhook_secrets"], str
        ):
            changes["stripe_webhook_secrets"] = (changes["stripe_webhook_secrets"],)
        if "webhook_retry_delays" in changes:
            changes["webhook_retry_delays"] = tuple(
                float(d) for d in changes["webhook_retry_delays"]
            )
        return dataclasses.replace(self, **changes)


def from_env(env: Mapping[str, str] | None = None) -> EmulatorConfig:
    """Settings from the environment (see README.md for every variable)."""
    env = os.environ if env is None else env
    changes: dict[str, Any] = {}

    def text(name: str, field: str) -> None:
        if env.get(name):
            changes[field] = env[name]

    text("GATEWAY_EMULATOR_HOST", "host")
    text("EMULATOR_PUBLIC_URL", "public_url")
    text("RAZORPAY_KEY_ID", "razorpay_key_id")
    text("RAZORPAY_KEY_SECRET", "razorpay_key_secret")
    text("STRIPE_API_KEY", "stripe_api_key")
    if env.get("GATEWAY_EMULATOR_PORT"):
        changes["port"] = _int("GATEWAY_EMULATOR_PORT", env["GATEWAY_EMULATOR_PORT"])
    # The services accept a comma-separated list (secret rotation). Razorpay signs with one
    # secret: the first. Stripe signs with every active secret (one v1= each).
    if env.get("RAZORPAY_WEBHOOK_SECRET"):
        changes["razorpay_webhook_secret"] = _first(env["RAZORPAY_WEBHOOK_SECRET"])
    if env.get("STRIPE_WEBHOOK_SECRET"):
        changes["stripe_webhook_secrets"] = _all(env["STRIPE_WEBHOOK_SECRET"])
    edge_port = _int("EDGE_PORT", env["EDGE_PORT"]) if env.get("EDGE_PORT") else 8080
    for name, field, gateway in (
        ("EMULATOR_WEBHOOK_RAZORPAY_URL", "webhook_razorpay_url", "razorpay"),
        ("EMULATOR_WEBHOOK_STRIPE_URL", "webhook_stripe_url", "stripe"),
    ):
        if name in env:
            changes[field] = webhook_url(env[name])
        elif edge_port != 8080:  # follow the edge when `make run` moved it
            changes[field] = f"http://127.0.0.1:{edge_port}/api/v1/webhooks/{gateway}"
    if env.get("EMULATOR_WEBHOOK_RETRY_DELAYS"):
        changes["webhook_retry_delays"] = retry_delays(env["EMULATOR_WEBHOOK_RETRY_DELAYS"])
    if env.get("EMULATOR_WEBHOOK_TIMEOUT"):
        changes["webhook_timeout_s"] = float(env["EMULATOR_WEBHOOK_TIMEOUT"])
    if env.get("EMULATOR_FAULTS"):
        try:
            faults = json.loads(env["EMULATOR_FAULTS"])
        except ValueError:
            raise FaultError("EMULATOR_FAULTS must be a JSON object") from None
        if not isinstance(faults, dict):
            raise FaultError("EMULATOR_FAULTS must be a JSON object")
        changes["faults"] = faults
    return EmulatorConfig().with_changes(**changes)


def webhook_url(raw: str) -> str | None:
    """An empty value, "none" or "off" turns a gateway's webhooks off."""
    value = raw.strip()
    return None if value.lower() in ("", "none", "off") else value


def retry_delays(raw: str) -> tuple[float, ...]:
    """ "0.2,0.5,1" → (0.2, 0.5, 1.0): the waits between attempts (attempts = waits + 1)."""
    try:
        delays = tuple(float(part) for part in raw.split(",") if part.strip())
    except ValueError:
        raise SystemExit(f"retry delays must be numbers separated by commas, got {raw!r}") from None
    if any(d < 0 for d in delays):
        raise SystemExit("retry delays must not be negative")
    return delays


def _int(name: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"{name} must be an integer, got {raw!r}") from None


def _all(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.split(",") if part.strip())


def _first(raw: str) -> str:
    parts = _all(raw)
    return parts[0] if parts else raw
