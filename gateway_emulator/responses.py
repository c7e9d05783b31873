"""Building responses: JSON, HTML, redirects."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from .httpserver import Response


def json_response(status: int, payload: Any, headers: Sequence[tuple[str, str]] = ()) -> Response:
    body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return Response(status, body, "application/json; charset=utf-8", list(headers))


def html_response(status: int, page: str) -> Response:
    return Response(status, page.encode("utf-8"), "text/html; charset=utf-8")


def redirect(location: str) -> Response:
    """303 See Other: the browser follows it with a GET, as after a form POST."""
    return Response(303, b"", None, [("Location", location), ("Cache-Control", "no-store")])


def with_query(url: str, params: Mapping[str, str]) -> str:
    """`url` with `params` appended to whatever query it already has."""
    parts = urlsplit(url)
    extra = urlencode(list(params.items()))
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def parse_json_object(body: bytes) -> dict[str, Any] | None:
    """The body as a JSON object; {} when empty; None when it is not a JSON object."""
    if not body.strip():
        return {}
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None
