"""`make logs`: JSON lines become one readable line each; other lines pass through; files are followed."""

from __future__ import annotations

import json

from tools.logs import follow, readable


def test_a_json_line_reads_as_time_service_level_id_message_and_the_rest() -> None:
    line = json.dumps({"ts": "2026-12-03T08:30:01.250+00:00", "level": "warning", "service": "order_svc",
                       "logger": "checkout.rpc", "msg": "rpc", "correlation_id": "0123456789abcdef0123",
                       "method": "/checkout.v1.OrderService/CreateOrder", "code": 2102})
    assert readable(line, "order") == ("08:30:01.250 order_svc      warning 012345…0123  rpc  "
                                       "method=/checkout.v1.OrderService/CreateOrder code=2102")


def test_a_line_that_is_not_json_is_shown_as_it_is() -> None:
    assert readable("[2026-12-03 08:30:01] envoy started\n", "edge").endswith("edge           [2026-12-03 08:30:01] envoy started")


def test_an_exception_follows_its_line() -> None:
    line = json.dumps({"ts": "2026-12-03T08:30:01.250+00:00", "level": "error", "service": "s", "msg": "boom",
                       "exception": "Traceback …\nValueError: x"})
    assert readable(line, "s").endswith("boom\nTraceback …\nValueError: x")


def test_follow_reads_complete_lines_of_every_file(tmp_path) -> None:
    (tmp_path / "cart.log").write_text('{"msg": "a"}\n{"msg": "b"}\n{"msg": "half')
    (tmp_path / "order.log").write_text("plain\n")
    assert list(follow(tmp_path, from_start=True, once=True)) == [
        ("cart", '{"msg": "a"}'), ("cart", '{"msg": "b"}'), ("order", "plain")]
