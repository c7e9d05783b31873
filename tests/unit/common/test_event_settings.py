"""What relays and consumers agree on: stream names, wire subjects, nak delays, read from the settings."""

from __future__ import annotations

import pytest

from common.events import EventSettings
from common.settings import load_settings


def test_event_settings_names_and_delays():
    events = EventSettings(stream="S", subject_prefix="t1.", nak_delays=(1.0, 5.0))
    assert events.stream_subjects == "t1.checkout.>"
    assert events.wire_subject("checkout.order.paid") == "t1.checkout.order.paid"
    assert events.local_subject("t1.checkout.order.paid") == "checkout.order.paid"
    assert events.max_deliveries_advisory("d") == "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.S.d"
    assert [events.nak_delay(n) for n in (1, 2, 3, 9)] == [1.0, 5.0, 5.0, 5.0]
    assert EventSettings().duplicate_window > EventSettings().relay_max_retry_delay


def test_event_settings_from_the_environment():
    settings = load_settings({"CONSUMER_NAK_DELAYS": "0.5, 2", "NATS_SUBJECT_PREFIX": "t9.", "CONSUMER_MAX_DELIVER": "4"})
    events = EventSettings.from_settings(settings)
    assert events.nak_delays == (0.5, 2.0) and events.max_deliver == 4
    assert events.stream_subjects == "t9.checkout.>" and events.stream == "CHECKOUT"
    for bad in ({"CONSUMER_MAX_DELIVER": "five"}, {"CONSUMER_NAK_DELAYS": "1,soon"}, {"CONSUMER_MAX_DELIVER": "0"}):
        with pytest.raises(SystemExit):
            load_settings(bad)
