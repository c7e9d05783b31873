"""What the outbox relays and the event consumers agree on: stream names, header names, and how an
outbox subject becomes a wire subject. Tests give each run its own stream names and subject
prefix, because the machine's NATS is shared between test runs.
"""

from __future__ import annotations

import dataclasses

from common.settings import Settings

# Headers on every published event.
MSG_ID_HEADER = "Nats-Msg-Id"  # = outbox id; JetStream drops a repeat inside the duplicate window
CORRELATION_HEADER = "X-Correlation-Id"
AGGREGATE_HEADER = "Checkout-Aggregate-Id"
OUTBOX_SEQ_HEADER = "Checkout-Outbox-Seq"

STREAM_SUBJECT_PREFIX = "checkout."


@dataclasses.dataclass(frozen=True)
class EventSettings:
    stream: str = "CHECKOUT"
    dlq_stream: str = "CHECKOUT_DLQ"  # stores the max-deliveries advisories so none is missed
    subject_prefix: str = ""  # prepended to "checkout.…" on the wire (tests: a unique namespace)
    replicas: int = 1
    duplicate_window: float = 600.0  # seconds; must exceed the relay's worst retry delay
    max_age: float = 7 * 24 * 3600.0
    dlq_max_age: float = 30 * 24 * 3600.0
    ack_wait: float = 30.0
    max_deliver: int = 5
    nak_delays: tuple[float, ...] = (1.0, 5.0, 15.0, 60.0)  # by delivery number: 1st failure, 2nd, …
    max_in_flight: int = 8  # deliveries a consumer handles at once (1: one after the other)
    relay_poll_interval: float = 1.0
    relay_batch: int = 100
    relay_publish_timeout: float = 2.0
    relay_max_retry_delay: float = 5.0

    @classmethod
    def from_settings(cls, settings: Settings) -> EventSettings:
        return cls(
            stream=settings.nats_stream, dlq_stream=settings.nats_dlq_stream,
            subject_prefix=settings.nats_subject_prefix, replicas=settings.nats_replicas,
            duplicate_window=settings.nats_duplicate_window, max_age=settings.nats_max_age,
            dlq_max_age=settings.nats_dlq_max_age, ack_wait=settings.consumer_ack_wait,
            max_deliver=settings.consumer_max_deliver, nak_delays=settings.nak_delays,
            max_in_flight=settings.consumer_max_in_flight, relay_poll_interval=settings.outbox_relay_poll_interval,
            relay_batch=settings.outbox_relay_batch, relay_publish_timeout=settings.outbox_relay_publish_timeout,
            relay_max_retry_delay=settings.outbox_relay_max_retry_delay,
        )

    @property
    def stream_subjects(self) -> str:
        return f"{self.subject_prefix}{STREAM_SUBJECT_PREFIX}>"

    def wire_subject(self, subject: str) -> str:
        return f"{self.subject_prefix}{subject}"

    def local_subject(self, wire_subject: str) -> str:
        """The outbox subject of a wire subject (the test namespace removed)."""
        return wire_subject.removeprefix(self.subject_prefix)

    def max_deliveries_advisory(self, durable: str | None = None) -> str:
        """The subject NATS publishes to when a message of `durable` ran out of deliveries."""
        return f"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{self.stream}.{durable or '*'}"

    def nak_delay(self, delivered: int) -> float:
        if not self.nak_delays:
            return 0.0
        return self.nak_delays[min(delivered, len(self.nak_delays)) - 1]
