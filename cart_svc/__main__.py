"""Run the cart service: python -m cart_svc (gRPC, the Redis cache, the sweeper, the cart-orders
consumer and the outbox relay of schema `cart`)."""

from __future__ import annotations

from cart_svc.app import assemble
from common.service_main import run_service

if __name__ == "__main__":
    run_service("cart", assemble)
