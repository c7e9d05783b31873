"""Gateway webhooks: signature checks (signatures.py), event mapping (events.py), the inbox table
(store.py) and the handler both RPCs call (handler.py). See payment_svc/README.md, "Webhooks"."""

from payment_svc.webhooks.handler import Ack, WebhookHandler, WebhookSettings, load_webhook_settings, metadata_values

__all__ = ["Ack", "WebhookHandler", "WebhookSettings", "load_webhook_settings", "metadata_values"]
