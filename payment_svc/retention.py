"""What payment_svc prunes besides its plumbing (common/retention.py): the raw body of a webhook event
processed or ignored long ago. The row stays (gateway, event id, type, status, times): it still
answers a redelivery as a duplicate; only the bytes, kept to reprocess a failed event, go."""

from __future__ import annotations

from common.retention import PruneTask
from common.settings import Settings

_DAY_SECONDS = 86400.0


def webhook_body_task(settings: Settings) -> PruneTask:
    return PruneTask("webhook_bodies", """
        UPDATE payment.webhook_events SET body = ''::bytea WHERE (gateway, event_id) IN (
            SELECT gateway, event_id FROM payment.webhook_events
            WHERE status IN ('processed', 'ignored') AND octet_length(body) > 0
              AND processed_at < now() - make_interval(secs => :max_age_s)
            LIMIT :batch)""", settings.retention_webhook_body_days * _DAY_SECONDS)
