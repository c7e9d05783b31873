"""Prometheus metrics of enrollment_svc beyond the shared ones (common/metrics.py); the paid-order
consumer's outcome counter is beside its handler (workers/order_paid.py)."""

from __future__ import annotations

import prometheus_client

# The event's occurred_at is in whole seconds (common/clock.rfc3339): a lag reads up to 1 s long.
ENROLLMENT_LAG = prometheus_client.Histogram(
    "checkout_enrollment_lag_seconds", "Order paid (checkout.order.paid's occurred_at) → its enrollments committed",
    buckets=(1, 2, 5, 10, 30, 60, 120, 300, 900, 3600),
)
