"""The pooled httpx client under each gateway adapter: one per gateway, closed on shutdown.

Its connection limit is the gateway's bulkhead (PAYMENT_GATEWAY_CONNECTIONS): a gateway whose
calls hang holds at most that many connections, and a call past the limit waits for one within
the same timeouts, so the other gateway (the fallback) is never starved. The timeouts are per HTTP
call (connect, read); the adapters' callers (gateways/resilient.py) bound the whole call on top
with asyncio.timeout, which cancels the request and closes its connection.
"""

from __future__ import annotations

import httpx

from payment_svc.tuning import GatewayTuning


def gateway_timeout(tuning: GatewayTuning) -> httpx.Timeout:
    return httpx.Timeout(connect=tuning.connect_timeout_s, read=tuning.read_timeout_s,
                         write=tuning.read_timeout_s, pool=tuning.connect_timeout_s)


def gateway_limits(tuning: GatewayTuning) -> httpx.Limits:
    return httpx.Limits(max_connections=tuning.connections, max_keepalive_connections=tuning.connections,
                        keepalive_expiry=30.0)


def gateway_client(tuning: GatewayTuning, *, base_url: str = "", auth: httpx.Auth | None = None) -> httpx.AsyncClient:
    """`trust_env=False`: the gateways' addresses are settings, never an environment proxy's."""
    return httpx.AsyncClient(base_url=base_url, auth=auth, timeout=gateway_timeout(tuning),
                             limits=gateway_limits(tuning), trust_env=False, follow_redirects=False)


def retryable_status(status: int) -> bool:
    """5xx and 429 are worth another try; every other 4xx is the gateway saying no."""
    return status >= 500 or status == 429
