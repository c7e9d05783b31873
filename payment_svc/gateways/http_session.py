"""The `requests` session under both SDKs: a connection pool sized to the gateway's thread pool,
and a response hook that turns 5xx and 429 into RetryableStatus before the SDK parses the body.

The Razorpay SDK maps every non-2xx by the body's error code (BAD_REQUEST_ERROR, GATEWAY_ERROR,
else ServerError) and never exposes the HTTP status; the hook lets us retry on the status itself
(5xx, 429) and never on a 4xx validation error.
"""

from __future__ import annotations

from typing import Any

import requests
from requests.adapters import HTTPAdapter


class RetryableStatus(Exception):
    """The gateway answered 5xx or 429: worth another try (raised from inside the SDK call)."""

    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status


def _raise_on_retryable(response: requests.Response, *args: Any, **kwargs: Any) -> None:
    if response.status_code >= 500 or response.status_code == 429:
        response.content  # noqa: B018 - read the body so the connection goes back to the pool
        raise RetryableStatus(response.status_code)


def gateway_session(pool_size: int, *, raise_retryable: bool = True) -> requests.Session:
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=2, pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    if raise_retryable:
        session.hooks["response"].append(_raise_on_retryable)
    return session
