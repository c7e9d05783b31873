"""Run the cart service: python -m cart_svc."""

from cart_svc.app import build_registration
from common.service_main import run_service

if __name__ == "__main__":
    run_service("cart_svc", lambda s: s.cart_grpc_port, lambda s: s.cart_metrics_port, build_registration)
