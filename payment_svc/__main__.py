"""Run the payment service: python -m payment_svc (its gRPC servicers, the session-expiry sweeper,
the reconciler and the relay of its outbox)."""

from common.service_main import run_service
from payment_svc.app import assemble

if __name__ == "__main__":
    run_service("payment", assemble)
