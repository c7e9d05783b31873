"""Any text field of any request, at any depth, with a control character is named (→ 1000)."""

from __future__ import annotations

import pytest
from google.protobuf import struct_pb2

from checkout.v1 import cart_pb2, common_pb2, order_pb2
from common.validation import control_character_fields, has_control_characters


@pytest.mark.parametrize("character", ["\x00", "\n", "\t", "\x1b", "\x1f", "\x7f"])
def test_each_control_character_is_one(character: str) -> None:
    assert has_control_characters(f"KA{character}")


@pytest.mark.parametrize("text", ["", "Karnataka", "Zoë → ₹1,499", "\x80 \xa0 \u2028"])
def test_printable_text_and_other_unicode_is_not(text: str) -> None:
    assert not has_control_characters(text)


def test_clean_requests_have_no_problems() -> None:
    request = cart_pb2.CreateCartRequest(items=[cart_pb2.CartItemInput(plan_id="p", quantity=1)], currency="INR")
    assert control_character_fields(request) == []


def test_nested_and_repeated_fields_are_named_by_their_path() -> None:
    request = cart_pb2.CreateCartRequest(
        items=[cart_pb2.CartItemInput(plan_id="ok"), cart_pb2.CartItemInput(plan_id="bad\x00")],
        device_id="dev\nice",
        analytics_data=[common_pb2.AnalyticsData(name="utm\x1b", value="fine")])
    assert control_character_fields(request) == [
        "items[1].plan_id: must not contain control characters",
        "device_id: must not contain control characters",
        "analytics_data[0].name: must not contain control characters",
    ]


def test_a_submessage_of_a_real_request() -> None:
    request = order_pb2.CreateOrderRequest(cart_token="t", billing=common_pb2.Billing(country="IN", state="K\x00A"),
                                           return_url="https://example.com/\r\nLocation: x")
    assert sorted(control_character_fields(request)) == [
        "billing.state: must not contain control characters",
        "return_url: must not contain control characters",
    ]


def test_map_keys_and_values() -> None:
    struct = struct_pb2.Struct()
    struct.update({"fine": "text", "bad": "a\tb", "bad\x00key": "x"})
    assert sorted(control_character_fields(struct)) == [
        "fields.bad.string_value: must not contain control characters",
        "fields: keys must not contain control characters",
    ]
