"""payment_svc's own settings, read from the environment (documented defaults).

Shared settings (keys, base URLs, ports) are in common/config.py; these tune only this service.

Timing, and why the bound holds: one gateway call waits at most connect 1 s + read 2.5 s;
each gateway gets at most 4.5 s per operation (up to 3 attempts with full-jitter backoff
0.1 s → 0.8 s, each attempt cut short by the budget); an OpenSession as a whole (lock wait,
preferred gateway, fallback) is cut off at 10 s, so "all gateways unavailable" (4001) comes back
within 10 s plus a few database round trips. order_svc waits 15 s per OpenSession call.
"""

from __future__ import annotations

import dataclasses
import os

from common.config import env_number, env_whole

DEFAULT_CHECKOUT_URL = "{base_url}/checkout/{gateway_order_id}"



@dataclasses.dataclass(frozen=True)
class GatewayTuning:
    connect_timeout_s: float = 1.0  # PAYMENT_GATEWAY_CONNECT_TIMEOUT
    read_timeout_s: float = 2.5  # PAYMENT_GATEWAY_READ_TIMEOUT
    attempts: int = 3  # PAYMENT_GATEWAY_ATTEMPTS: tries per gateway per operation
    first_backoff_s: float = 0.1  # PAYMENT_GATEWAY_BACKOFF: full jitter in [0, first * 2^(n-1)]
    max_backoff_s: float = 0.8  # PAYMENT_GATEWAY_MAX_BACKOFF
    budget_s: float = 4.5  # PAYMENT_GATEWAY_BUDGET: one gateway, one operation, retries included
    breaker_failures: int = 5  # PAYMENT_BREAKER_FAILURES: consecutive failed calls that open it
    breaker_cooldown_s: float = 30.0  # PAYMENT_BREAKER_COOLDOWN: open → half-open (one trial call)
    threads: int = 16  # PAYMENT_GATEWAY_THREADS: the SDKs block; each gateway has its own pool


@dataclasses.dataclass(frozen=True)
class PaymentSettings:
    tuning: GatewayTuning = GatewayTuning()
    open_session_bound_s: float = 10.0  # PAYMENT_OPEN_SESSION_BOUND: whole OpenSession, fallback included
    session_ttl_s: int = 30 * 60  # PAYMENT_SESSION_TTL: the contract's 30 minutes
    razorpay_checkout_url: str = DEFAULT_CHECKOUT_URL  # RAZORPAY_CHECKOUT_URL
    stripe_checkout_url: str = DEFAULT_CHECKOUT_URL  # STRIPE_CHECKOUT_URL
    sweep_interval_s: float = 30.0  # PAYMENT_SWEEP_INTERVAL (0: no sweeper inside the service)
    sweep_batch: int = 100  # PAYMENT_SWEEP_BATCH: rows per transaction


def load_payment_settings() -> PaymentSettings:
    tuning = GatewayTuning(
        connect_timeout_s=env_number("PAYMENT_GATEWAY_CONNECT_TIMEOUT", 1.0),
        read_timeout_s=env_number("PAYMENT_GATEWAY_READ_TIMEOUT", 2.5),
        attempts=max(1, env_whole("PAYMENT_GATEWAY_ATTEMPTS", 3)),
        first_backoff_s=env_number("PAYMENT_GATEWAY_BACKOFF", 0.1),
        max_backoff_s=env_number("PAYMENT_GATEWAY_MAX_BACKOFF", 0.8),
        budget_s=env_number("PAYMENT_GATEWAY_BUDGET", 4.5),
        breaker_failures=max(1, env_whole("PAYMENT_BREAKER_FAILURES", 5)),
        breaker_cooldown_s=env_number("PAYMENT_BREAKER_COOLDOWN", 30.0),
        threads=max(1, env_whole("PAYMENT_GATEWAY_THREADS", 16)),
    )
    return PaymentSettings(
        tuning=tuning,
        open_session_bound_s=env_number("PAYMENT_OPEN_SESSION_BOUND", 10.0),
        session_ttl_s=env_whole("PAYMENT_SESSION_TTL", 30 * 60),
        razorpay_checkout_url=os.environ.get("RAZORPAY_CHECKOUT_URL") or DEFAULT_CHECKOUT_URL,
        stripe_checkout_url=os.environ.get("STRIPE_CHECKOUT_URL") or DEFAULT_CHECKOUT_URL,
        sweep_interval_s=env_number("PAYMENT_SWEEP_INTERVAL", 30.0),
        sweep_batch=max(1, env_whole("PAYMENT_SWEEP_BATCH", 100)),
    )
