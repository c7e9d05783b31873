"""Wiring: the enrollment service's servicer on a gRPC server (used by __main__ and by tests),
and its background workers (the consumer, and an outbox relay unless OUTBOX_RELAY_EMBEDDED=0)."""

from __future__ import annotations

import grpc
from sqlalchemy.ext.asyncio import AsyncEngine

from checkout.v1 import enrollment_pb2, enrollment_pb2_grpc
from common.config import Settings
from common.events import BackgroundTask, EventSettings
from common.outbox_relay import start_relay
from common.server import Register
from enrollment_svc.consumer import EnrollmentConsumer
from enrollment_svc.grpc_api import EnrollmentApi


def build_registration(engine: AsyncEngine, settings: Settings) -> Register:
    def register(server: grpc.aio.Server) -> list[str]:
        enrollment_pb2_grpc.add_EnrollmentServiceServicer_to_server(EnrollmentApi(engine), server)
        return [enrollment_pb2.DESCRIPTOR.services_by_name["EnrollmentService"].full_name]

    return register


def start_workers(engine: AsyncEngine, settings: Settings, events: EventSettings) -> list[BackgroundTask]:
    consumer = EnrollmentConsumer(engine, settings.nats_url, events)
    workers = [BackgroundTask("enrollment-consumer", consumer.run)]
    if events.relay_embedded:
        workers.append(start_relay(settings, events, name="outbox-relay@enrollment_svc"))
    return workers
