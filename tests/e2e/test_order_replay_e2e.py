"""A final (non-retryable) answer to POST /api/v1/order is stored with its Idempotency-Key and
replayed through the edge: the same key and body get the same error envelope and HTTP status
again, even once its cause is gone; only a new key is a new request."""

from __future__ import annotations

import uuid

from tests.e2e import test_order_e2e as orders
from tests.e2e.stack import json_ok

# the same stack as test_order_e2e.py's: its fixtures, by their names
PLAN, emulator, stack_env, stack_services, user = orders.PLAN, orders.emulator, orders.stack_env, orders.stack_services, orders.user


def same_answer(first: dict, again: dict) -> None:
    """Every field of the envelope's error but the correlation id, which is each request's own."""
    assert {**again, "correlation_id": None} == {**first, "correlation_id": None}
    assert again["correlation_id"] != first["correlation_id"]


def test_an_empty_cart_refusal_replays_after_the_cart_has_an_item(stack, user, expect_envelope):
    with stack.client() as api:
        cart = json_ok(api.post("/api-proxy/api/cart", json={}, headers=user))
        body, keyed = {"cart_token": cart["token"]}, {**user, "Idempotency-Key": str(uuid.uuid4())}
        first = expect_envelope(api.post("/api/v1/order", json=body, headers=keyed), 400, 1004)
        json_ok(api.post(f"/api/v1/cart/{cart['token']}/items", json={"plan_id": PLAN, "quantity": 1}, headers=user))

        again = expect_envelope(api.post("/api/v1/order", json=body, headers=keyed), 400, 1004)

        same_answer(first, again)
        assert json_ok(api.get(f"/api/v1/cart/{cart['token']}", headers=user))["status"] == "active"  # the replay ordered nothing
        fresh = json_ok(api.post("/api/v1/order", json=body, headers={**user, "Idempotency-Key": str(uuid.uuid4())}))
        assert fresh["status"] == "awaiting_payment"  # the cause is gone indeed


async def test_an_expired_coupon_refusal_replays_after_the_coupon_is_valid_again(stack, user, expect_envelope):
    code = stack.new_coupon()["code"]
    with stack.client() as api:
        cart = json_ok(api.post("/api-proxy/api/cart", json={"items": [{"plan_id": PLAN, "quantity": 1}]}, headers=user))
        json_ok(api.post(f"/api/v1/cart/{cart['token']}/coupon", json={"code": code}, headers=user))
        await stack.execute("UPDATE cart.coupons SET ends_at = now() - interval '1 second' WHERE code = :code", code=code)
        body, keyed = {"cart_token": cart["token"]}, {**user, "Idempotency-Key": str(uuid.uuid4())}
        first = expect_envelope(api.post("/api/v1/order", json=body, headers=keyed), 400, 2004)
        assert first["validation_messages"] == ["code: coupon has expired"]
        assert first["suggested_action"] == "remove the coupon from the cart and place the order again"
        await stack.execute("UPDATE cart.coupons SET ends_at = NULL WHERE code = :code", code=code)

        again = expect_envelope(api.post("/api/v1/order", json=body, headers=keyed), 400, 2004)

        same_answer(first, again)
        assert json_ok(api.get(f"/api/v1/cart/{cart['token']}", headers=user))["status"] == "active"  # the replay ordered nothing
        fresh = json_ok(api.post("/api/v1/order", json=body, headers={**user, "Idempotency-Key": str(uuid.uuid4())}))
        assert (fresh["status"], fresh["discount_amount"]) == ("awaiting_payment", "149.90")  # the cause is gone indeed
