"""What a service's consumer asks of JetStream (common/consumer.py), and the subject check it makes
itself for servers that ignore multi-subject filters."""

from __future__ import annotations

import pytest
from nats.js.api import AckPolicy, DeliverPolicy

from common.consumer import Subscription, consumer_config, dead_letter_watch_config, subject_matches
from common.events import EventSettings


async def _ignore(event: object) -> None:
    return None


@pytest.mark.parametrize(("pattern", "subject", "matches"), [
    ("checkout.order.paid", "checkout.order.paid", True),
    ("checkout.order.paid", "checkout.order.paid.extra", False),
    ("checkout.order.paid", "checkout.order", False),
    ("checkout.order.*", "checkout.order.expired", True),
    ("checkout.order.*", "checkout.order.expired.late", False),
    ("checkout.*.paid", "checkout.order.paid", True),
    ("checkout.>", "checkout.payment.captured", True),
    ("checkout.>", "checkout", False),
    ("checkout.order.>", "checkout.cart.created", False),
])
def test_subject_matching_follows_nats(pattern: str, subject: str, matches: bool) -> None:
    assert subject_matches(pattern, subject) is matches


def test_one_subject_uses_the_filter_every_server_knows() -> None:
    events = EventSettings(subject_prefix="t1.", ack_wait=7.0, max_deliver=4)
    config = consumer_config(events, Subscription("order-payments", ("checkout.payment.captured",), _ignore))
    assert config.durable_name == "order-payments"
    assert config.filter_subject == "t1.checkout.payment.captured" and config.filter_subjects is None
    assert config.ack_policy == AckPolicy.EXPLICIT and config.deliver_policy == DeliverPolicy.ALL
    assert (config.ack_wait, config.max_deliver) == (7.0, 4)


def test_several_subjects_use_filter_subjects() -> None:
    subjects = ("checkout.order.expired", "checkout.order.cancelled")
    config = consumer_config(EventSettings(), Subscription("cart-orders", subjects, _ignore))
    assert config.filter_subject is None and config.filter_subjects == list(subjects)


def test_the_dead_letter_watcher_reads_its_consumers_advisories() -> None:
    subscription = Subscription("enrollment-orders", ("checkout.order.paid",), _ignore)
    config = dead_letter_watch_config(EventSettings(stream="CHECKOUT"), subscription)
    assert config.durable_name == "enrollment-orders_dead_letters"
    assert config.filter_subject == "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.CHECKOUT.enrollment-orders"
    assert config.max_deliver == -1  # an advisory is never given up on
