"""payment_svc's knobs, read from the one settings model (common/settings.py, PAYMENT_*, RAZORPAY_*,
STRIPE_*) into the small frozen values each part takes. Tests change a setting with
`settings.replace(...)`, never these directly.

Timing, and why the bound holds: one gateway call waits at most connect 1 s + read 2.5 s;
each gateway gets at most 4.5 s per operation (up to 3 attempts with full-jitter backoff
0.1 s → 0.8 s, each attempt cut short by the budget); an OpenSession as a whole (lock wait,
preferred gateway, fallback) is cut off at 10 s, so "all gateways unavailable" (4001) comes back
within 10 s plus a few database round trips. order_svc waits 15 s per OpenSession call.
"""

from __future__ import annotations

import dataclasses

from common.settings import Settings


@dataclasses.dataclass(frozen=True)
class GatewayTuning:
    connect_timeout_s: float = 1.0
    read_timeout_s: float = 2.5
    attempts: int = 3  # tries per gateway per operation
    first_backoff_s: float = 0.1  # full jitter in [0, first * 2^(n-1)]
    max_backoff_s: float = 0.8
    budget_s: float = 4.5  # one gateway, one operation, retries included
    breaker_failures: int = 5  # consecutive failed calls that open it
    breaker_cooldown_s: float = 30.0  # open → half-open (one trial call)
    connections: int = 16  # pooled HTTP connections per gateway (a bulkhead: each gateway has its own)

    @classmethod
    def from_settings(cls, settings: Settings) -> GatewayTuning:
        return cls(
            connect_timeout_s=settings.payment_gateway_connect_timeout,
            read_timeout_s=settings.payment_gateway_read_timeout,
            attempts=settings.payment_gateway_attempts,
            first_backoff_s=settings.payment_gateway_backoff,
            max_backoff_s=settings.payment_gateway_max_backoff,
            budget_s=settings.payment_gateway_budget,
            breaker_failures=settings.payment_breaker_failures,
            breaker_cooldown_s=settings.payment_breaker_cooldown,
            connections=settings.payment_gateway_connections,
        )


@dataclasses.dataclass(frozen=True)
class SessionTuning:
    open_session_bound_s: float = 10.0  # a whole OpenSession, fallback included
    session_ttl_s: int = 30 * 60  # the contract's 30 minutes (never past the order's expiry)

    @classmethod
    def from_settings(cls, settings: Settings) -> SessionTuning:
        return cls(open_session_bound_s=settings.payment_open_session_bound, session_ttl_s=settings.payment_session_ttl)


@dataclasses.dataclass(frozen=True)
class WebhookTuning:
    razorpay_secrets: tuple[str, ...]
    stripe_secrets: tuple[str, ...]
    stripe_tolerance_s: float = 300.0  # accepted age of a Stripe-Signature timestamp, either way
    lock_timeout_s: float = 2.0  # longest wait for a row lock before answering 4001 (the gateway retries)
    max_age_s: float = 3 * 24 * 3600.0  # an event the gateway made longer ago is acknowledged and ignored

    @classmethod
    def from_settings(cls, settings: Settings) -> WebhookTuning:
        return cls(razorpay_secrets=settings.razorpay_webhook_secret, stripe_secrets=settings.stripe_webhook_secret,
                   stripe_tolerance_s=settings.stripe_webhook_tolerance,
                   lock_timeout_s=settings.payment_webhook_lock_timeout, max_age_s=settings.webhook_max_age)


@dataclasses.dataclass(frozen=True)
class SweepTuning:
    interval_s: float = 30.0  # 0: no sweeper inside the service
    batch: int = 100  # rows per transaction

    @classmethod
    def from_settings(cls, settings: Settings) -> SweepTuning:
        return cls(interval_s=settings.payment_sweep_interval, batch=settings.payment_sweep_batch)


@dataclasses.dataclass(frozen=True)
class ReconcileTuning:
    after_s: float = 120.0  # a pending session this old (since opening) is looked up
    interval_s: float = 60.0  # between passes (0: no reconciler inside the service)
    batch: int = 50  # sessions per query
    max_sessions: int = 2000  # sessions per pass (a pass always ends)
    expired_grace_s: float = 900.0  # expired sessions are looked up this long
    backoff_s: float = 60.0  # after a look-up that changed nothing, the next one after this, doubling…
    max_delay_s: float = 900.0  # …up to this

    @classmethod
    def from_settings(cls, settings: Settings) -> ReconcileTuning:
        return cls(after_s=settings.payment_reconcile_after, interval_s=settings.payment_reconcile_interval,
                   batch=settings.payment_reconcile_batch, max_sessions=settings.payment_reconcile_max,
                   expired_grace_s=settings.payment_reconcile_expired_grace,
                   backoff_s=settings.payment_reconcile_backoff, max_delay_s=settings.payment_reconcile_max_delay)
