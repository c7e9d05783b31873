"""Run the payment service: python -m payment_svc (with its background sweeper)."""

from payment_svc.app import build_service
from common.service_main import run_service

if __name__ == "__main__":
    run_service("payment_svc", lambda s: s.payment_grpc_port, lambda s: s.payment_metrics_port, build_service)
