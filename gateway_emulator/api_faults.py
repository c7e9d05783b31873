"""Applying a gateway's API faults around one API call: down, latency, hangs, injected 5xx."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable

from . import razorpay_entities, stripe_objects
from .faults import GatewayFaults
from .httpserver import Response
from .responses import json_response


def error_response(gateway: str, status: int) -> Response:
    body = (
        razorpay_entities.server_error(status)
        if gateway == "razorpay"
        else stripe_objects.server_error(status)
    )
    return json_response(status, body)


async def with_faults(
    gateway: str,
    faults: GatewayFaults,
    rng: random.Random,
    call: Callable[[], Awaitable[Response]],
) -> Response:
    if faults.down:
        return Response.dropped() if faults.down_mode == "reset" else error_response(gateway, 503)
    if faults.latency_ms:
        await asyncio.sleep(faults.latency_ms / 1000)
    if faults.timeout_s and rng.random() < faults.timeout_rate:
        await asyncio.sleep(faults.timeout_s)
    failing = faults.error_rate > 0 and rng.random() < faults.error_rate
    if failing and faults.error_phase == "before":
        return error_response(gateway, rng.choice(faults.error_statuses))
    response = await call()
    if failing:  # "after": the call took effect, its answer is lost
        return error_response(gateway, rng.choice(faults.error_statuses))
    return response
