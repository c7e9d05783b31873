"""Readiness checks: each returns True once a server answers, never raises."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable

from devstack.ports import connect

Probe = Callable[[], bool]

TIMEOUT = 1.0


def tcp(host: str, port: int) -> Probe:
    def probe() -> bool:
        try:
            with connect(host, port, TIMEOUT):
                return True
        except OSError:
            return False

    return probe


def http_ok(url: str) -> Probe:
    # An empty ProxyHandler: a developer's http_proxy must not intercept 127.0.0.1.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def probe() -> bool:
        try:
            with opener.open(url, timeout=TIMEOUT) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    return probe


def redis_ping(host: str, port: int) -> Probe:
    def probe() -> bool:
        try:
            with connect(host, port, TIMEOUT) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    return probe


def nats_jetstream(host: str, port: int) -> Probe:
    """The server's greeting (`INFO {...}`) says whether JetStream is enabled."""

    def probe() -> bool:
        try:
            with connect(host, port, TIMEOUT) as sock:
                greeting = b""
                while b"\r\n" not in greeting and len(greeting) < 65536:
                    chunk = sock.recv(4096)
                    if not chunk:
                        return False
                    greeting += chunk
        except OSError:
            return False
        line = greeting.split(b"\r\n", 1)[0]
        if not line.startswith(b"INFO "):
            return False
        try:
            info = json.loads(line[5:])
        except ValueError:
            return False
        return info.get("jetstream") is True

    return probe


def postgres_select1(host: str, port: int, user: str, dbname: str) -> Probe:
    """TCP is not enough: PostgreSQL accepts connections while still starting up."""

    def probe() -> bool:
        import psycopg

        if not tcp(host, port)():  # libpq's own connect could meet itself on a port not yet bound
            return False
        try:
            with psycopg.connect(
                host=host, port=port, user=user, dbname=dbname, connect_timeout=2
            ) as conn:
                conn.execute("SELECT 1")
                return True
        except psycopg.Error:
            return False

    return probe
