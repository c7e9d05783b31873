"""Run the enrollment service: python -m enrollment_svc (common.service_main: settings, logs,
metrics, its engine, the gRPC server, the consumer of paid orders and its outbox relay)."""

from __future__ import annotations

from common.service_main import run_service
from enrollment_svc.app import assemble

if __name__ == "__main__":
    run_service("enrollment", assemble)
