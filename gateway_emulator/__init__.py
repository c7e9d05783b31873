"""A payment-gateway emulator: a real HTTP server speaking the subset of Razorpay's and
Stripe's REST APIs and webhooks this project uses, with a hosted checkout page and fault knobs.

    from gateway_emulator import start_emulator
    emulator = start_emulator(port=0, webhook_razorpay_url="http://127.0.0.1:9000/hook")
    razorpay.Client(auth=("rzp_test_devkey", "dev-key-secret"), base_url=emulator.url)
    emulator.stop()

Run it alone with `python -m gateway_emulator`. README.md in this folder has the details.
"""

from .app import Emulator
from .config import EmulatorConfig, from_env
from .runner import RunningEmulator, checkout_url, start_emulator

__all__ = [
    "Emulator",
    "EmulatorConfig",
    "RunningEmulator",
    "checkout_url",
    "from_env",
    "start_emulator",
]
