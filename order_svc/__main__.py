"""Run the order service: python -m order_svc."""

from common.service_main import run_service
from order_svc.app import SERVICE, assemble

if __name__ == "__main__":
    run_service(SERVICE, assemble)
