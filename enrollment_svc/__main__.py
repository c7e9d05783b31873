"""Run the enrollment service: python -m enrollment_svc."""

from enrollment_svc.app import build_registration
from common.service_main import run_service

if __name__ == "__main__":
    run_service("enrollment_svc", lambda s: s.enrollment_grpc_port, lambda s: s.enrollment_metrics_port, build_registration)
