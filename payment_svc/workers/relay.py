"""The relay of the `payment` schema's outbox to NATS (common/outbox_relay.py): every payment_svc
process runs one; one of them leads (an advisory lock per schema), the others stand by."""

from __future__ import annotations

from common.outbox_relay import relay_worker
from common.settings import Settings
from common.workers import Worker
from payment_svc.metrics import count_payment_outcome
from payment_svc.tables import PLUMBING


def payment_relay(settings: Settings) -> Worker:
    return relay_worker(settings, "payment", PLUMBING, on_published=count_payment_outcome)
