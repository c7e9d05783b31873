"""payment_svc's payment-outcome counter: fed by the payment relay's hook, one per settled attempt."""

from __future__ import annotations

import prometheus_client

from payment_svc.metrics import count_payment_outcome


def outcomes(gateway: str) -> dict[str, float]:
    return {outcome: prometheus_client.REGISTRY.get_sample_value(
        "checkout_payment_outcomes_total", {"gateway": gateway, "outcome": outcome}) or 0.0
        for outcome in ("captured", "failed", "expired")}


def test_captured_failed_and_expired_events_count_by_gateway_and_nothing_else_does() -> None:
    before = outcomes("stripe")
    for subject in ("checkout.payment.captured", "checkout.payment.captured", "checkout.payment.failed",
                    "checkout.payment.expired", "checkout.payment.session_opened", "checkout.payment.flagged",
                    "checkout.order.paid"):
        count_payment_outcome(subject, {"gateway": "stripe", "status": "whatever"})
    after = outcomes("stripe")
    assert {key: after[key] - before[key] for key in after} == {"captured": 2, "failed": 1, "expired": 1}
