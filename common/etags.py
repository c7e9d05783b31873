"""HTTP validators for cacheable reads (RFC 9110 §8.8.3, §13.1.2): a strong ETag of an answer's
bytes, and whether an If-None-Match header names it."""

from __future__ import annotations

import hashlib

# Initial metadata a service sends with an empty answer when the client's copy is current; the edge
# (edge/envelope.lua) turns that answer into 304 Not Modified with no body.
NOT_MODIFIED_METADATA = "x-edge-not-modified"


def etag_of(content: bytes) -> str:
    """A strong, quoted ETag: equal bytes, equal tag."""
    return f'"{hashlib.sha256(content).hexdigest()[:32]}"'


def none_match(if_none_match: str | None, etag: str) -> bool:
    """True when the client's If-None-Match names `etag` (or is `*`): answer 304. Weak comparison,
    as §13.1.2 wants for If-None-Match: a W/ prefix on either side does not matter."""
    if not if_none_match:
        return False
    ours = etag.removeprefix("W/")
    for candidate in if_none_match.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == ours:
            return True
    return False
