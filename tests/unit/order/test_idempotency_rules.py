"""Idempotency decisions: same request replays, another request is 2005, a key still running is 2006,
retryable errors are not stored."""

from __future__ import annotations

import pytest

from common.errors import CheckoutError, ErrorCode
from order_svc.commands import OrderRequest
from order_svc.domain.idempotency import (
    StoredKey,
    check_key,
    ensure_replayable,
    ensure_same_request,
    fingerprint,
    is_finished,
    should_store,
)
from order_svc.stored_responses import error_body, order_body, replay
from order_svc.views import OrderView, PaymentView, TaxView


def test_fingerprint_depends_on_method_and_body() -> None:
    assert fingerprint("POST /a", b"x") == fingerprint("POST /a", b"x")
    assert fingerprint("POST /a", b"x") != fingerprint("POST /a", b"y")
    assert fingerprint("POST /a", b"x") != fingerprint("POST /b", b"x")


def test_another_request_with_the_same_key_is_2005() -> None:
    stored = StoredKey("h1", "started", None, None, None)
    ensure_same_request(stored, "h1")
    with pytest.raises(CheckoutError) as caught:
        ensure_same_request(stored, "h2")
    assert caught.value.code is ErrorCode.IDEMPOTENCY_KEY_REUSED


@pytest.mark.parametrize("key", ["", "x" * 256, "bad\nkey"])
def test_bad_keys_are_1000(key: str) -> None:
    with pytest.raises(CheckoutError) as caught:
        check_key(key)
    assert caught.value.code is ErrorCode.VALIDATION_FAILED


def test_a_key_taken_by_a_running_request_is_2006_for_the_same_body_and_2005_for_another() -> None:
    running = StoredKey("h1", "converting", None, None, "t")
    with pytest.raises(CheckoutError) as caught:
        ensure_replayable(running, "h1")
    assert caught.value.code is ErrorCode.IDEMPOTENCY_KEY_IN_FLIGHT and caught.value.retryable
    with pytest.raises(CheckoutError) as caught:
        ensure_replayable(running, "h2")
    assert caught.value.code is ErrorCode.IDEMPOTENCY_KEY_REUSED
    ensure_replayable(StoredKey("h1", "finished", 0, b"{}", "t"), "h1")  # a finished answer: replay it


def test_the_fingerprint_covers_every_field_of_the_request() -> None:
    base = OrderRequest(cart_token="c")
    variants = [OrderRequest(cart_token="d"), OrderRequest(cart_token="c", billing_country="IN"),
                OrderRequest(cart_token="c", billing_state="KA"), OrderRequest(cart_token="c", payment_method="upi"),
                OrderRequest(cart_token="c", gateway="stripe"), OrderRequest(cart_token="c", return_url="https://a/"),
                OrderRequest(cart_token="c", cancel_url="https://a/")]
    assert base.canonical() == OrderRequest(cart_token="c").canonical()
    assert len({fingerprint("POST /a", v.canonical()) for v in [base, *variants]}) == len(variants) + 1


def test_finished_only_with_a_response() -> None:
    assert is_finished(StoredKey("h", "finished", 0, b"", "t"))
    assert not is_finished(StoredKey("h", "order_created", None, None, "t"))


def test_retryable_errors_are_not_stored_final_ones_are() -> None:
    assert not should_store(CheckoutError(ErrorCode.GATEWAY_UNAVAILABLE))
    assert should_store(CheckoutError(ErrorCode.CART_EMPTY))


def test_a_stored_error_replays_as_the_same_error() -> None:
    original = CheckoutError(ErrorCode.INVALID_COUPON, validation_messages=["code: coupon has expired"])
    code, body = error_body(original)
    assert code == 2004
    with pytest.raises(CheckoutError) as caught:
        replay(code, body)
    assert caught.value.code is ErrorCode.INVALID_COUPON
    assert caught.value.validation_messages == ["code: coupon has expired"]
    assert (caught.value.message, caught.value.suggested_action) == (original.message, original.suggested_action)


def test_a_stored_order_replays_as_the_same_order() -> None:
    view = OrderView(order_token="o", cart_token="c", user_id="u", status="awaiting_payment", currency="INR",
                     subtotal="10.00", discount_amount="0.00", tax_amount="1.80", total="11.80",
                     taxes=(TaxView("IGST", "18", "1.80"),), payment=PaymentView("p", "razorpay", "order_1", "https://x",
                                                                                 "pending", "11.80", "INR", "t", "o"),
                     created_at="2026-12-03T10:00:00Z", enrollment_id="", discount_code="", exchange_rate="1",
                     updated_at="2026-12-03T10:00:00Z")
    code, body = order_body(view)
    assert code == 0 and replay(code, body) == view
