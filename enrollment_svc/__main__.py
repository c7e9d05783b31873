"""Run the enrollment service: python -m enrollment_svc.

The same start-up as every service (common.service_main), plus background workers: the JetStream
consumer that turns captured payments into enrollments, and an outbox relay (a standby unless it
wins the leader lock; OUTBOX_RELAY_EMBEDDED=0 turns it off).
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from common.config import Settings
from common.events import load_event_settings
from common.service_main import Assembly, run_service
from enrollment_svc.app import build_registration, start_workers


def assemble(engine: AsyncEngine, settings: Settings) -> Assembly:
    workers = start_workers(engine, settings, load_event_settings())
    return Assembly(build_registration(engine, settings), [worker.stop for worker in workers])


if __name__ == "__main__":
    run_service("enrollment_svc", lambda s: s.enrollment_grpc_port, lambda s: s.enrollment_metrics_port, assemble)
