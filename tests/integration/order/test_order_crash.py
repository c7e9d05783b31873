"""The order service SIGKILLed between the order commit and the gateway call, restarted, and the
same request retried: one order, one gateway order, and the answer the client would have got."""

from __future__ import annotations

import signal
import uuid

import grpc
import pytest
from sqlalchemy import func, select

from checkout.v1 import order_pb2, order_pb2_grpc
from common.tables import orders
from gateway_emulator.runner import start_emulator
from tests.support.processes import ServiceProcess, fault_env, free_port
from tests.support.tokens import bearer, new_user

pytestmark = pytest.mark.slow
PLAN = "7a1e0000-0000-4000-8000-000000000101"


async def test_crash_after_order_commit_then_retry_resumes(own_settings, own_engine, tmp_path):
    # A database of its own, so the kill lands on this test's order and its outbox rows stay here.
    settings, engine = own_settings, own_engine
    from cart_svc.cart_service import CartService
    from cart_svc.commands import ItemChoice, NewCart
    from common.request_context import Caller

    user = new_user()
    cart = await CartService(engine, settings).create_cart(Caller(user_id=user), NewCart(items=(ItemChoice(plan_id=PLAN, quantity=1),)))
    with start_emulator(port=0) as emulator:
        payment_port, order_port = free_port(), free_port()
        common_env = {"DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url, "NATS_URL": settings.nats_url,
                      "RAZORPAY_BASE_URL": emulator.url, "STRIPE_BASE_URL": emulator.url, "PAYMENT_GRPC_PORT": str(payment_port),
                      "ORDER_GRPC_PORT": str(order_port), "PAYMENT_GRPC_ADDRESS": f"127.0.0.1:{payment_port}",
                      "PAYMENT_METRICS_PORT": "0", "ORDER_METRICS_PORT": "0", "OUTBOX_RELAY_EMBEDDED": "0"}
        payment = ServiceProcess("payment_svc", common_env, tmp_path / "payment.log", payment_port)
        doomed = ServiceProcess("order_svc", common_env | fault_env("order_after_commit"), tmp_path / "order1.log", order_port)
        restarted = None
        try:
            payment.wait_serving()
            doomed.wait_serving()
            key = str(uuid.uuid4())
            metadata = (*bearer(settings, user), ("idempotency-key", key))
            request = order_pb2.CreateOrderRequest(cart_token=cart.cart.token)
            async with grpc.aio.insecure_channel(f"127.0.0.1:{order_port}") as channel:
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await order_pb2_grpc.OrderServiceStub(channel).CreateOrder(request, metadata=metadata, timeout=10)
                assert caught.value.code() == grpc.StatusCode.UNAVAILABLE  # the connection died with the process
            assert doomed.wait_killed() == -signal.SIGKILL
            async with engine.connect() as conn:
                placed = (await conn.execute(select(orders.c.order_token, orders.c.status).where(orders.c.cart_token == cart.cart.token))).all()
            assert len(placed) == 1 and placed[0].status == "pending"  # committed, no session yet
            assert not emulator.state()["razorpay"]["orders"] or all(
                not o.get("receipt", "").startswith(placed[0].order_token) for o in emulator.state()["razorpay"]["orders"])

            restarted = ServiceProcess("order_svc", common_env, tmp_path / "order2.log", order_port)
            restarted.wait_serving()
            async with grpc.aio.insecure_channel(f"127.0.0.1:{order_port}") as channel:
                stub = order_pb2_grpc.OrderServiceStub(channel)
                order = await stub.CreateOrder(request, metadata=metadata, timeout=15)
                replay = await stub.CreateOrder(request, metadata=metadata, timeout=15)
            assert order.order_token == placed[0].order_token and order.status == "awaiting_payment"
            assert replay == order
            async with engine.connect() as conn:
                count = (await conn.execute(select(func.count()).select_from(orders).where(orders.c.cart_token == cart.cart.token))).scalar()
            assert count == 1
            gateway_orders = [o for o in emulator.state()["razorpay"]["orders"] if o.get("receipt", "").startswith(order.order_token)]
            assert len(gateway_orders) == 1 and gateway_orders[0]["id"] == order.payment.gateway_order_id
        finally:
            for process in (restarted, doomed, payment):
                if process is not None:
                    process.stop()
