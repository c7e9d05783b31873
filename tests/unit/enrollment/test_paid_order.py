"""Reading a captured-payment event and the order line it enrolls; event settings."""

from __future__ import annotations

import json
import uuid

import pytest

from common.events import EventSettings
from enrollment_svc.domain.captured import InvalidEvent, first_line, parse_captured

TOKEN = str(uuid.uuid4())


def test_a_full_event_is_read():
    body = {"order_token": TOKEN.upper(), "payment_token": "p", "user_id": "u", "amount": "1499.00",
            "currency": "INR", "gateway": "razorpay", "gateway_payment_id": "pay_1", "extra": 1}
    event = parse_captured(json.dumps(body).encode())
    assert event.order_token == TOKEN  # normalised
    assert (event.amount, event.currency, event.gateway_payment_id) == ("1499.00", "INR", "pay_1")


def test_only_the_order_token_is_required():
    assert parse_captured(json.dumps({"order_token": TOKEN}).encode()).payment_token == ""


@pytest.mark.parametrize("data", [b"", b"{not json", b"\xff\xfe", b"[1, 2]", b'"text"', b"{}",
                                  b'{"order_token": ""}', b'{"order_token": "not-a-uuid"}', b'{"order_token": 5}'])
def test_unusable_payloads_are_invalid(data):
    with pytest.raises(InvalidEvent):
        parse_captured(data)


def test_first_line_is_the_enrolled_one():
    items = [{"internship_id": "i1", "plan_id": "p1", "period_value": 3, "period_unit": "month"},
             {"internship_id": "i2", "plan_id": "p2", "period_value": 1, "period_unit": "year"}]
    line = first_line(items)
    assert (line.internship_id, line.plan_id, line.period_value, line.period_unit) == ("i1", "p1", 3, "month")


@pytest.mark.parametrize("items", [[], [{"plan_id": "p"}], [{"internship_id": "i", "plan_id": "p", "period_value": "x",
                                                             "period_unit": "month"}],
                                   [{"internship_id": "i", "plan_id": "p", "period_value": 1, "period_unit": "day"}]])
def test_orders_without_a_plan_period_are_refused(items):
    with pytest.raises(ValueError):
        first_line(items)


def test_event_settings_names_and_delays():
    events = EventSettings(stream="S", subject_prefix="t1.", durable="d", nak_delays=(1.0, 5.0))
    assert events.stream_subjects == "t1.checkout.>"
    assert events.wire_subject("checkout.payment.captured") == "t1.checkout.payment.captured"
    assert events.max_deliveries_advisory("d") == "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.S.d"
    assert [events.nak_delay(n) for n in (1, 2, 3, 9)] == [1.0, 5.0, 5.0, 5.0]
    assert EventSettings().duplicate_window > EventSettings().relay_max_retry_delay


def test_event_settings_from_the_environment(monkeypatch):
    from common.events import load_event_settings

    monkeypatch.setenv("OUTBOX_RELAY_LOCK_KEY", "4611686018427387903")  # exact, not through a float
    monkeypatch.setenv("ENROLLMENT_NAK_DELAYS", "0.5, 2")
    monkeypatch.setenv("OUTBOX_RELAY_EMBEDDED", "0")
    monkeypatch.setenv("NATS_SUBJECT_PREFIX", "t9.")
    events = load_event_settings()
    assert events.relay_lock_key == 4611686018427387903
    assert events.nak_delays == (0.5, 2.0) and events.relay_embedded is False
    assert events.stream_subjects == "t9.checkout.>" and events.stream == "CHECKOUT"
    monkeypatch.setenv("ENROLLMENT_MAX_DELIVER", "five")
    with pytest.raises(SystemExit):
        load_event_settings()
