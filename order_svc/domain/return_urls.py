"""Where a student may be sent back after paying: `return_url` / `cancel_url` must lie on an
allowed origin (CONTRACT.md "Additions": RETURN_URL_ORIGINS), or the hosted page becomes an open
redirect to anywhere.

An allowed origin is `scheme://host[:port]`, the port `*` for any; without a port only the
scheme's default port matches. Hosts match exactly (no wildcard hosts: one typo there opens the
door to every subdomain). A URL is refused when it is not absolute http(s), carries user info
(`http://user@localhost` reads as localhost to people and as a login to browsers), contains a
backslash, whitespace or a control character (browsers rewrite those before they parse), or its
origin is none of the allowed ones. http is allowed only on loopback hosts (development), and
ENVIRONMENT=production refuses to start unless RETURN_URL_ORIGINS names https origins only.
"""

from __future__ import annotations

import dataclasses
import urllib.parse

MAX_URL = 2048
_DEFAULT_PORTS = {"http": 80, "https": 443}
_LOOPBACK = ("localhost", "127.0.0.1", "::1")


@dataclasses.dataclass(frozen=True)
class Origin:
    scheme: str
    host: str
    port: int | None  # None: any port

    def admits(self, scheme: str, host: str, port: int) -> bool:
        return scheme == self.scheme and host == self.host and (self.port is None or port == self.port)


def is_loopback(host: str) -> bool:
    return host in _LOOPBACK or host.endswith(".localhost")


def parse_origin(text: str) -> Origin:
    """`https://shop.example.com`, `http://localhost:*`, `http://127.0.0.1:8080` → Origin; ValueError
    for anything else (a path, user info, another scheme, http on a host that is not loopback)."""
    value = text.strip()
    port_any = value.endswith(":*")
    parsed = urllib.parse.urlsplit(value[:-2] if port_any else value)
    host = (parsed.hostname or "").lower()
    if parsed.scheme not in _DEFAULT_PORTS or not host or "@" in parsed.netloc or parsed.path not in ("", "/") \
            or parsed.query or parsed.fragment or (port_any and parsed.port is not None):
        raise ValueError(f"{text!r} is not an origin like https://shop.example.com or http://localhost:*")
    if parsed.scheme == "http" and not is_loopback(host):
        raise ValueError(f"{text!r}: only https outside development (http only on localhost)")
    port = None if port_any else (parsed.port or _DEFAULT_PORTS[parsed.scheme])
    return Origin(parsed.scheme, host, port)


def development_origins(edge_domain: str, edge_port: int, edge_tls_port: int = 0) -> tuple[str, ...]:
    """The dev default: the edge's own origins (its hosts at its port, and over HTTPS at its TLS
    port) and any local port over http."""
    hosts = [host for host in (edge_domain, f"cart.{edge_domain}", f"pay.{edge_domain}") if is_loopback(host)]
    own = tuple(f"http://{host}:{edge_port}" for host in hosts)
    secure = tuple(f"https://{host}:{edge_tls_port}" for host in ("localhost", "127.0.0.1", *hosts)) if edge_tls_port else ()
    return ("http://localhost:*", "http://127.0.0.1:*", *own, *secure)


def url_problem(url: str, origins: tuple[Origin, ...]) -> str | None:
    """Why `url` may not be a return URL, or None if it may."""
    if len(url) > MAX_URL:
        return f"at most {MAX_URL} characters"
    if any(ch.isspace() or ch == "\\" or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        return "no spaces, backslashes or control characters"
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in _DEFAULT_PORTS or not parsed.netloc:
        return "an absolute http(s) URL"
    if "@" in parsed.netloc:
        return "no user info (user@host)"
    try:
        port = parsed.port or _DEFAULT_PORTS[parsed.scheme]
    except ValueError:
        return "a valid port"
    host = (parsed.hostname or "").lower()
    if not host or not any(origin.admits(parsed.scheme, host, port) for origin in origins):
        return "must be on an allowed origin (RETURN_URL_ORIGINS)"
    return None
