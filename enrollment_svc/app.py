"""One enrollment_svc process, assembled: the use cases on the service's own engine, the
EnrollmentService servicer, the consumer of paid orders and the relay of its outbox."""

from __future__ import annotations

import dataclasses

import grpc
from sqlalchemy.ext.asyncio import AsyncEngine

from checkout.v1 import enrollment_pb2, enrollment_pb2_grpc
from common.consumer import Subscription
from common.dead_letters import DeadLetterStore
from common.server import Register
from common.service_main import Assembly
from common.settings import Settings
from common.uow import uow_factory
from enrollment_svc import workers
from enrollment_svc.api import EnrollmentApi
from enrollment_svc.repository import EnrollmentRepository
from enrollment_svc.service import DeadLetterDesk, EnrollmentService
from enrollment_svc.tables import plumbing
from enrollment_svc.workers.order_paid import OrderPaidHandler
from enrollment_svc.workers.order_refunded import OrderRefundedHandler


@dataclasses.dataclass(frozen=True)
class Parts:
    enrollments: EnrollmentService
    on_order_paid: OrderPaidHandler
    subscriptions: tuple[Subscription, ...]
    dead_letters: DeadLetterDesk

    def register(self, server: grpc.aio.Server) -> list[str]:
        enrollment_pb2_grpc.add_EnrollmentServiceServicer_to_server(
            EnrollmentApi(self.enrollments, self.dead_letters), server)
        return [enrollment_pb2.DESCRIPTOR.services_by_name["EnrollmentService"].full_name]


def parts(engine: AsyncEngine) -> Parts:
    """The use cases and handlers (no workers): also what tests and replay_dlq use."""
    enrollments = EnrollmentService(uow_factory(engine, plumbing), EnrollmentRepository())
    on_order_paid = OrderPaidHandler(enrollments)
    subscriptions = (workers.order_paid_subscription(on_order_paid),
                     workers.order_refunded_subscription(OrderRefundedHandler(enrollments)))
    desk = DeadLetterDesk(DeadLetterStore(engine, plumbing), {s.durable: s.handler for s in subscriptions})
    return Parts(enrollments, on_order_paid, subscriptions, desk)


def assemble(engine: AsyncEngine, settings: Settings) -> Assembly:
    built = parts(engine)
    consumer, _ = workers.consumer(engine, settings, built.subscriptions)
    register: Register = built.register
    return Assembly(register, [consumer, workers.relay(settings)])
