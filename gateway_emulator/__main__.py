"""`python -m gateway_emulator [--port 8090] [--webhook-razorpay URL] [--webhook-stripe URL] …`

Settings come from the environment (README.md lists them); flags override it. Logs JSON lines
to stderr; SIGTERM or SIGINT stops it cleanly (pending webhook retries are abandoned).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from collections.abc import Sequence
from typing import Any

from .app import Emulator
from .config import EmulatorConfig, from_env, retry_delays, webhook_url
from .faults import FaultBook, FaultError, parse_fault_flag

_log = logging.getLogger("gateway_emulator")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m gateway_emulator", description=__doc__)
    parser.add_argument("--host", help="listen address (GATEWAY_EMULATOR_HOST, default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, help="listen port (GATEWAY_EMULATOR_PORT, default 8090)"
    )
    parser.add_argument("--public-url", help="base of checkout URLs (EMULATOR_PUBLIC_URL)")
    parser.add_argument("--webhook-razorpay", metavar="URL", help="'' or none turns them off")
    parser.add_argument("--webhook-stripe", metavar="URL", help="'' or none turns them off")
    parser.add_argument("--retry-delays", metavar="S,S,…", help="waits between webhook attempts")
    parser.add_argument("--webhook-timeout", type=float, metavar="S", help="per attempt")
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="GATEWAY.KNOB=VALUE",
        help="e.g. razorpay.latency_ms=200, all.webhook_duplicate=2 (repeatable)",
    )
    parser.add_argument("--log-level", default=os.environ.get("LOG_LEVEL", "INFO"))
    return parser.parse_args(argv)


def build_config(args: argparse.Namespace) -> EmulatorConfig:
    config = from_env()
    changes: dict[str, Any] = {}
    if args.host:
        changes["host"] = args.host
    if args.port is not None:
        changes["port"] = args.port
    if args.public_url:
        changes["public_url"] = args.public_url
    if args.webhook_razorpay is not None:
        changes["webhook_razorpay_url"] = webhook_url(args.webhook_razorpay)
    if args.webhook_stripe is not None:
        changes["webhook_stripe_url"] = webhook_url(args.webhook_stripe)
    if args.retry_delays is not None:
        changes["webhook_retry_delays"] = retry_delays(args.retry_delays)
    if args.webhook_timeout is not None:
        changes["webhook_timeout_s"] = args.webhook_timeout
    if args.fault:
        faults: dict[str, dict[str, Any]] = {k: dict(v) for k, v in config.faults.items()}
        for flag in args.fault:
            gateway, knob, value = parse_fault_flag(flag)
            faults.setdefault(gateway, {})[knob] = value
        changes["faults"] = faults
    config = config.with_changes(**changes)
    FaultBook(config.faults)  # refuse to start with a bad knob
    return config


async def serve(config: EmulatorConfig) -> None:
    emulator = Emulator(config)
    await emulator.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    _log.info("signal received, stopping")
    await emulator.stop()


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    from .logjson import configure

    configure(args.log_level)
    try:
        config = build_config(args)
    except (FaultError, TypeError) as exc:
        raise SystemExit(f"gateway_emulator: {exc}") from None
    asyncio.run(serve(config))


if __name__ == "__main__":
    main()
