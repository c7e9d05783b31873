"""A small HTTP/1.1 server on `asyncio.start_server`: keep-alive, Content-Length and chunked
bodies, size limits, idle timeouts, and an `abort` response that drops the connection unanswered
(how a gateway outage looks to a client). A request whose client hangs up before the answer is
ready (it gave up: its timeout cancelled the call) has its handler cancelled."""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import http
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

_log = logging.getLogger("gateway_emulator.http")

MAX_LINE = 64 * 1024
MAX_HEADERS = 100
GONE_POLL_S = 0.05  # how often a slow answer checks whether its client is still there


@dataclass
class Request:
    method: str
    target: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    keep_alive: bool

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)

    def query_value(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str | None = "application/json"
    headers: list[tuple[str, str]] = field(default_factory=list)
    close: bool = False
    abort: bool = False  # drop the connection without answering

    @classmethod
    def dropped(cls) -> Response:
        return cls(status=0, abort=True)


Handler = Callable[[Request], Awaitable[Response]]


class BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class HTTPServer:
    def __init__(
        self,
        handler: Handler,
        *,
        host: str,
        port: int,
        max_body: int = 1024 * 1024,
        idle_timeout: float = 30.0,
    ) -> None:
        self._handler = handler
        self._host = host
        self._port = port
        self._max_body = max_body
        self._idle_timeout = idle_timeout
        self._server: asyncio.Server | None = None
        self._bound_port: int | None = None
        self._connections: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        if self._bound_port is None:
            raise RuntimeError("the server has not started")
        return self._bound_port

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, self._host, self._port, limit=MAX_LINE, reuse_address=True
        )
        self._bound_port = int(self._server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await self._connection(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                request = await asyncio.wait_for(
                    _read_request(reader, writer, self._max_body), self._idle_timeout
                )
            except BadRequest as exc:
                body = f'{{"error":{{"message":"{exc}"}}}}'.encode()
                await _write(writer, Response(exc.status, body, close=True), head=False, keep=False)
                return
            if request is None:
                return
            response = await self._answer_unless_gone(request, reader)
            if response is None:  # the client closed the connection: nobody to answer
                return
            if response.abort:
                writer.transport.abort()
                return
            keep = request.keep_alive and not response.close
            await _write(writer, response, head=request.method == "HEAD", keep=keep)
            if not keep:
                return

    async def _answer_unless_gone(self, request: Request, reader: asyncio.StreamReader) -> Response | None:
        """The handler's answer; if the client hangs up first (a caller that gave up: its timeout
        cancelled the call), the handler is cancelled as a server would drop the work, and None."""
        task = asyncio.ensure_future(self._answer(request))
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=GONE_POLL_S)
                if done:
                    return task.result()
                if reader.at_eof():  # EOF arrived while the request is being answered
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                    return None
        finally:
            if not task.done():
                task.cancel()

    async def _answer(self, request: Request) -> Response:
        try:
            return await self._handler(request)
        except asyncio.CancelledError:
            raise
        except Exception:
            _log.exception("handler failed", extra={"fields": {"path": request.path}})
            return Response(500, b'{"error":{"message":"emulator internal error"}}', close=True)


async def _read_request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, max_body: int
) -> Request | None:
    line = await _readline(reader)
    while line in (b"\r\n", b"\n"):
        line = await _readline(reader)
    if not line:
        return None
    parts = line.decode("latin-1").strip().split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest(400, "malformed request line")
    method, target, version = parts
    headers: dict[str, str] = {}
    for _ in range(MAX_HEADERS + 1):
        raw = await _readline(reader)
        if raw in (b"\r\n", b"\n", b""):
            break
        name, sep, value = raw.decode("latin-1").partition(":")
        if not sep or not name or name != name.strip():
            raise BadRequest(400, "malformed header")
        key = name.lower()
        headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
    else:
        raise BadRequest(431, "too many headers")
    connection = headers.get("connection", "").lower()
    keep_alive = "close" not in connection if version == "HTTP/1.1" else "keep-alive" in connection
    if headers.get("expect", "").lower() == "100-continue":
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    body = await _read_body(reader, headers, max_body)
    split = urlsplit(target)
    return Request(
        method=method.upper(),
        target=target,
        path=unquote(split.path) or "/",
        query=parse_qs(split.query, keep_blank_values=True),
        headers=headers,
        body=body,
        keep_alive=keep_alive,
    )


async def _readline(reader: asyncio.StreamReader) -> bytes:
    try:
        return await reader.readuntil(b"\n")
    except asyncio.IncompleteReadError as exc:
        return exc.partial
    except asyncio.LimitOverrunError:
        raise BadRequest(431, "line too long") from None


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str], max_body: int) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        chunks: list[bytes] = []
        total = 0
        while True:
            size_line = (await _readline(reader)).split(b";")[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                raise BadRequest(400, "malformed chunk") from None
            if size == 0:
                while (await _readline(reader)) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            total += size
            if total > max_body:
                raise BadRequest(413, "request body too large")
            chunks.append(await reader.readexactly(size))
            await _readline(reader)
    raw_length = headers.get("content-length", "0") or "0"
    if not raw_length.isdigit():
        raise BadRequest(400, "bad content-length")
    length = int(raw_length)
    if length > max_body:
        raise BadRequest(413, "request body too large")
    return await reader.readexactly(length) if length else b""


async def _write(
    writer: asyncio.StreamWriter, response: Response, *, head: bool, keep: bool
) -> None:
    try:
        reason = http.HTTPStatus(response.status).phrase
    except ValueError:
        reason = "Unknown"
    lines = [f"HTTP/1.1 {response.status} {reason}"]
    if response.content_type:
        lines.append(f"Content-Type: {response.content_type}")
    lines.append(f"Content-Length: {len(response.body)}")
    lines.append(f"Date: {email.utils.formatdate(usegmt=True)}")
    lines.append("Server: gateway-emulator")
    lines.append("Connection: keep-alive" if keep else "Connection: close")
    lines.extend(f"{name}: {value}" for name, value in response.headers)
    head_bytes = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    writer.write(head_bytes if head else head_bytes + response.body)
    await writer.drain()
