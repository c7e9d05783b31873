"""The `requests` session under both SDKs: a connection pool sized to the gateway's thread pool,
and a response hook that turns 5xx and 429 into RetryableStatus before the SDK parses the body.

The Razorpay SDK maps every non-2xx by the body's error code (BAD_REQUEST_ERROR, GATEWAY_ERROR,
else ServerError) and never exposes the HTTP status; the hook lets us retry on the status itself
(5xx, 429) and never on a 4xx validation error.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

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


class _Adapter(HTTPAdapter):
    """requests' adapter, remembering each host's connection-pool key: requests works it out again
    for every call (parsing the URL and, as the Razorpay SDK passes its CA bundle's path as
    `verify`, a stat of that path), though it only changes with the host and the TLS settings."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._pool_keys: dict[tuple[Any, ...], tuple[dict[str, Any], dict[str, Any]]] = {}

    def build_connection_pool_key_attributes(self, request: requests.PreparedRequest, verify: Any,
                                             cert: Any = None) -> tuple[dict[str, Any], dict[str, Any]]:
        parts = urlsplit(request.url or "")
        key = (parts.scheme, parts.netloc, verify if isinstance(verify, (bool, str)) else id(verify),
               cert if isinstance(cert, (str, tuple, type(None))) else id(cert))
        known = self._pool_keys.get(key)
        if known is None:
            known = super().build_connection_pool_key_attributes(request, verify, cert)
            if len(self._pool_keys) < 64:  # a handful of hosts; never unbounded
                self._pool_keys[key] = known
        host, pool = known
        return dict(host), dict(pool)  # copies: the caller may change them


def gateway_session(pool_size: int, *, raise_retryable: bool = True) -> requests.Session:
    session = requests.Session()
    adapter = _Adapter(pool_connections=2, pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    if raise_retryable:
        session.hooks["response"].append(_raise_on_retryable)
    return session
