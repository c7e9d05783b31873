"""enrollment_svc's background work: the consumer of paid orders (with its dead-letter watcher)
and the relay of its own outbox (`checkout.enrollment.created`)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncEngine

from common.consumer import EventConsumer, Subscription, consumer_worker
from common.dead_letters import DeadLetterStore
from common.events import EventSettings
from common.outbox_relay import relay_worker
from common.settings import Settings
from common.workers import Worker
from enrollment_svc.events import ORDER_PAID, ORDER_REFUNDED
from enrollment_svc.tables import plumbing
from enrollment_svc.workers.order_paid import OrderPaidHandler
from enrollment_svc.workers.order_refunded import OrderRefundedHandler

SERVICE = "enrollment"
ORDERS_DURABLE = "enrollment-orders"
REFUNDS_DURABLE = "enrollment-refunds"


def order_paid_subscription(handler: OrderPaidHandler) -> Subscription:
    return Subscription(ORDERS_DURABLE, (ORDER_PAID,), handler, description="paid orders become enrollments")


def order_refunded_subscription(handler: OrderRefundedHandler) -> Subscription:
    return Subscription(REFUNDS_DURABLE, (ORDER_REFUNDED,), handler,
                        description="fully refunded orders cancel their enrollments")


def consumer(engine: AsyncEngine, settings: Settings, subscriptions: Sequence[Subscription]) -> tuple[Worker, EventConsumer]:
    return consumer_worker(DeadLetterStore(engine, plumbing), settings.nats_url, EventSettings.from_settings(settings),
                           subscriptions, name="enrollment-consumer")


def relay(settings: Settings) -> Worker:
    return relay_worker(settings, SERVICE, plumbing)
