"""Idempotency decisions: same request replays, another request is 2005, retryable errors are not stored."""

from __future__ import annotations

import pytest

from common.errors import CheckoutError, ErrorCode
from order_svc.domain.idempotency import StoredKey, check_key, ensure_same_request, fingerprint, is_finished, should_store
from order_svc.stored_responses import error_body, replay


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


def test_finished_only_with_a_response() -> None:
    assert is_finished(StoredKey("h", "finished", 0, b"", "t"))
    assert not is_finished(StoredKey("h", "order_created", None, None, "t"))


def test_retryable_errors_are_not_stored_final_ones_are() -> None:
    assert not should_store(CheckoutError(ErrorCode.GATEWAY_UNAVAILABLE))
    assert should_store(CheckoutError(ErrorCode.CART_EMPTY))


def test_a_stored_error_replays_as_the_same_error() -> None:
    original = CheckoutError(ErrorCode.INVALID_COUPON, validation_messages=["code: coupon has expired"])
    with pytest.raises(CheckoutError) as caught:
        replay(2004, error_body(original))
    assert caught.value.code is ErrorCode.INVALID_COUPON
    assert caught.value.validation_messages == ["code: coupon has expired"]
