"""Which gateways to try for a session, in order: the preferred one, then the other."""

from __future__ import annotations

from typing import Final, Literal

GatewayName = Literal["razorpay", "stripe"]
GATEWAYS: Final[tuple[GatewayName, ...]] = ("razorpay", "stripe")
DEFAULT_GATEWAY: Final[GatewayName] = "razorpay"


def gateways_to_try(preferred: str) -> tuple[GatewayName, ...]:
    first: GatewayName = "stripe" if preferred == "stripe" else DEFAULT_GATEWAY
    return (first, *(name for name in GATEWAYS if name != first))
