"""Free and busy TCP ports on 127.0.0.1."""

from __future__ import annotations

import socket
import struct

HOST = "127.0.0.1"


def free_ports(count: int) -> list[int]:
    """`count` distinct ports the kernel says are free now (racy, but fine for local servers)."""
    sockets: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((HOST, 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def connect(host: str, port: int, timeout: float) -> socket.socket:
    """A TCP connection to a server listening on `port`, never to the caller itself.

    Polling a port of the ephemeral range (Linux: 32768-60999, where the dev ports are) that nothing
    listens on yet can pick that very port as the source and connect the socket to itself (TCP
    simultaneous open; here after ~2,000 attempts at an even port). The poller then holds the
    port the server is about to bind, and the server fails with "Address already in use". Such a
    socket is reset at once (SO_LINGER 0: no TIME_WAIT keeps the port) and counts as refused.
    """
    sock = socket.create_connection((host, port), timeout=timeout)
    if sock.getsockname() == sock.getpeername():
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
        raise ConnectionRefusedError(f"{host}:{port}: nothing listens there (the probe connected to itself)")
    return sock


def port_in_use(port: int, host: str = HOST) -> bool:
    try:
        connect(host, port, timeout=0.5).close()
    except OSError:
        return False
    return True
