"""Prometheus metrics of the gateway calls and breakers (exposed on the service's metrics port)."""

from __future__ import annotations

import prometheus_client

GATEWAY_CALLS = prometheus_client.Counter(
    "checkout_gateway_calls_total", "Gateway API attempts, by gateway, operation and outcome",
    ["gateway", "operation", "outcome"],  # outcome: ok, rejected, unavailable, timeout, breaker_open
)
GATEWAY_SECONDS = prometheus_client.Histogram(
    "checkout_gateway_call_seconds", "Gateway API attempt time", ["gateway", "operation"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
BREAKER_OPEN = prometheus_client.Gauge(
    "checkout_gateway_breaker_open", "1 while the gateway's circuit breaker is open or half-open", ["gateway"],
)
SESSION_FALLBACKS = prometheus_client.Counter(
    "checkout_payment_session_fallbacks_total", "Sessions opened at another gateway than the preferred one",
    ["preferred", "used"],
)
