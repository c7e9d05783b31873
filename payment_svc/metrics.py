"""Prometheus metrics of the webhook endpoints, the reconciler and refunds (on payment_svc's metrics port;
the gateway calls have theirs in gateways/metrics.py)."""

from __future__ import annotations

import prometheus_client

SIGNATURE_FAILURES = prometheus_client.Counter(
    "checkout_webhook_signature_failures_total",
    "Webhooks refused for a missing or invalid signature (nothing stored), by gateway", ["gateway"],
)
WEBHOOKS = prometheus_client.Counter(
    "checkout_webhooks_total", "Verified webhooks, by gateway and verdict",
    ["gateway", "verdict"],  # accepted, duplicate, ignored, flagged, failed (answered 5xx: the gateway retries)
)
WEBHOOK_SECONDS = prometheus_client.Histogram(
    "checkout_webhook_seconds", "Verified webhook handling time (verify, store, apply, commit)", ["gateway"],
    buckets=(0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
RECONCILED = prometheus_client.Counter(
    "checkout_reconcile_sessions_total", "Sessions looked at by the reconciler, by gateway and result",
    # captured, failed, flagged, unchanged (gateway: still pending / nothing new), unavailable,
    # rejected (the gateway does not know the order), skipped (claimed elsewhere or settled meanwhile), error
    ["gateway", "result"],
)
REFUNDS = prometheus_client.Counter(
    "checkout_refunds_total", "Refund steps, by gateway and step",
    # requested (held, pending), processed, failed, unconfirmed (the gateway could not be reached),
    # recorded (made at the gateway, told by its webhook), flagged (a report that contradicts ours)
    ["gateway", "step"],
)
RECONCILE_PASSES = prometheus_client.Counter("checkout_reconcile_passes_total",
                                             "Reconciliation passes, by outcome (ok, error)", ["outcome"])
RECONCILE_PASS_SECONDS = prometheus_client.Histogram("checkout_reconcile_pass_seconds", "Reconciliation pass time",
                                                     buckets=(0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120))
