"""Run the order service: python -m order_svc."""

from order_svc.app import assemble
from common.service_main import run_service

if __name__ == "__main__":
    run_service("order_svc", lambda s: s.order_grpc_port, lambda s: s.order_metrics_port, assemble)
