"""A small HTTP/1.1 server on asyncio protocols and httptools' C parser.

Why not a framework: the gateway's own work per request is a few tens of microseconds, and a
general-purpose server costs several times that (measured: a minimal aiohttp proxy did ~2,400
req/s on one core where this stack does ~20,000; see bench/README.md). This module does only what
the gateway needs: keep-alive, bodies by Content-Length or chunked, a body size limit, whole and
streamed (chunked) responses with back-pressure, and a graceful shutdown.

    Request         what a handler gets: method, path, query, headers (lower-case), body
    Response        a whole answer
    StreamResponse  a streamed answer: prepare(), write(), write_eof()
    PathRouter      exact paths plus `{param}` patterns → handler
    HttpServer      listens, parses, runs one handler task per request, shuts down gracefully
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qsl

import httptools
import orjson

log = logging.getLogger("apex_ai_proxy.http")

Handler = Callable[["Request"], Awaitable["Response | StreamResponse"]]

_REASONS = {
    100: "Continue",
    200: "OK",
    201: "Created",
    204: "No Content",
    301: "Moved Permanently",
    302: "Found",
    304: "Not Modified",
    307: "Temporary Redirect",
    308: "Permanent Redirect",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    409: "Conflict",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    529: "Overloaded",
}
_HIGH_WATER = 256 * 1024  # bytes buffered towards a slow client before a writer waits


def _status_line(status: int, reason: str | None = None) -> bytes:
    return f"HTTP/1.1 {status} {reason or _REASONS.get(status, 'Unknown')}\r\n".encode("latin-1")


class _DateHeader:
    """`date:` changes once a second; format it once a second, not once a request."""

    def __init__(self) -> None:
        self._second = 0
        self._value = b""

    def get(self) -> bytes:
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._value = b"date: " + formatdate(now, usegmt=True).encode() + b"\r\n"
        return self._value


_date = _DateHeader()


class ClientDisconnected(ConnectionResetError):
    """The client went away while its answer was being written."""


class Headers(dict):
    """Request headers: names stored lower-case, looked up case-insensitively; repeats joined."""

    __slots__ = ()

    def get(self, name: str, default: Any = None) -> Any:  # type: ignore[override]
        return dict.get(self, name.lower(), default)

    def __getitem__(self, name: str) -> str:
        return dict.__getitem__(self, name.lower())

    def __contains__(self, name: object) -> bool:
        return dict.__contains__(self, name.lower() if isinstance(name, str) else name)

    def copy(self) -> Headers:
        return Headers(self)


class Request:
    __slots__ = (
        "method",
        "path",
        "query_string",
        "raw_path_qs",
        "headers",
        "body",
        "too_large",
        "match_info",
        "app",
        "_protocol",
        "_query",
    )

    def __init__(
        self, method: str, raw_url: bytes, headers: dict[str, str], protocol: _HttpProtocol
    ) -> None:
        self.method = method
        self.raw_path_qs = raw_url.decode("latin-1")
        path, _, query = self.raw_path_qs.partition("?")
        self.path = path
        self.query_string = query
        self.headers = headers
        self.body = b""
        self.too_large = False  # the body went over the server's limit and was not kept
        self.match_info: dict[str, str] = {}
        self.app: Any = protocol.server.app
        self._protocol = protocol
        self._query: dict[str, str] | None = None

    @property
    def content_length(self) -> int | None:
        value = self.headers.get("content-length")
        return int(value) if value is not None and value.isdigit() else None

    @property
    def query(self) -> dict[str, str]:
        if self._query is None:
            self._query = dict(parse_qsl(self.query_string, keep_blank_values=True))
        return self._query

    async def read(self) -> bytes:
        return self.body

    def close_connection(self) -> None:
        """Drop the client connection (a relayed body was cut: the client must see it)."""
        self._protocol.close()


class Response:
    """A whole response. `headers` names are lower-case; `raw_headers` may repeat a name."""

    __slots__ = ("status", "body", "headers", "raw_headers", "reason")

    def __init__(
        self,
        status: int = 200,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        content_type: str | None = None,
    ) -> None:
        self.status = status
        self.body = body
        self.headers = headers if headers is not None else {}
        if content_type is not None:
            self.headers["content-type"] = content_type
        self.raw_headers: list[tuple[str, str]] = []
        self.reason: str | None = None

    @property
    def content_type(self) -> str | None:
        return self.headers.get("content-type")

    @content_type.setter
    def content_type(self, value: str) -> None:
        self.headers["content-type"] = value

    def _head(self, extra: bytes) -> bytes:
        parts = [_status_line(self.status, self.reason), _date.get()]
        for name, value in self.headers.items():
            parts.append(f"{name}: {value}\r\n".encode("latin-1", "replace"))
        for name, value in self.raw_headers:
            parts.append(f"{name}: {value}\r\n".encode("latin-1", "replace"))
        parts.append(extra)
        return b"".join(parts)

    def encode(self, keep_alive: bool) -> bytes:
        extra = b"content-length: %d\r\n" % len(self.body)
        if not keep_alive:
            extra += b"connection: close\r\n"
        return self._head(extra + b"\r\n") + self.body


def json_response(data: Any, status: int = 200) -> Response:
    return Response(status, orjson.dumps(data), content_type="application/json")


class StreamResponse(Response):
    """A response sent as it is produced, with chunked transfer encoding.

    `write` waits while the client reads slower than we produce (back-pressure), and raises
    ConnectionResetError once the client has gone, so relays stop promptly.
    """

    __slots__ = ("_protocol", "_prepared", "_finished", "_chunked")

    def __init__(
        self, status: int = 200, headers: dict[str, str] | None = None, reason: str | None = None
    ) -> None:
        super().__init__(status, b"", headers)
        self.reason = reason
        self._protocol: _HttpProtocol | None = None
        self._prepared = False
        self._finished = False
        self._chunked = True

    @property
    def prepared(self) -> bool:
        return self._prepared

    async def prepare(self, request: Request) -> None:
        """Fix status and headers. They go out with the first body bytes (one write, not two)."""
        protocol = request._protocol
        self._protocol = protocol
        self._prepared = True
        protocol.streaming = True
        keep = b"" if protocol.keep_alive else b"connection: close\r\n"
        # A relayed answer that states its length (or has no body) is sent as it is, unchunked.
        has_length = "content-length" in self.headers or any(
            name.lower() == "content-length" for name, _ in self.raw_headers
        )
        if has_length or self.status in (204, 304) or self.status < 200 or request.method == "HEAD":
            self._chunked = False
            self.body = self._head(keep + b"\r\n")
        else:
            self.body = self._head(b"transfer-encoding: chunked\r\n" + keep + b"\r\n")

    async def write(self, data: bytes) -> None:
        wait = self.send_now(data)
        if wait is not None:
            await wait

    def send_now(self, data: bytes) -> Awaitable[None] | None:
        """Write without waiting: returns None, or an awaitable to wait on when the client reads
        slower than we write. Raises ClientDisconnected once the client has gone."""
        protocol = self._protocol
        if protocol is None or protocol.closed:
            raise ClientDisconnected("client connection closed")
        if data:
            frame = b"%x\r\n%b\r\n" % (len(data), data) if self._chunked else data
            if self.body:  # the head, not sent yet
                frame, self.body = self.body + frame, b""
            protocol.transport.write(frame)  # type: ignore[union-attr]
            if protocol.paused:
                return protocol.drain()
        return None

    async def write_eof(self, data: bytes = b"") -> None:
        if self._finished:
            return
        self._finished = True
        protocol = self._protocol
        if protocol is None or protocol.closed:
            return
        frame = (b"%x\r\n%b\r\n" % (len(data), data) if data else b"") if self._chunked else data
        if self._chunked:
            frame += b"0\r\n\r\n"
        protocol.write(self.body + frame)
        self.body = b""


class PathRouter:
    """Exact paths, then `{name}` patterns; each path maps methods to handlers."""

    def __init__(self) -> None:
        self.exact: dict[str, dict[str, Handler]] = {}
        self.patterns: list[tuple[re.Pattern[str], dict[str, Handler]]] = []

    def add(self, path: str, methods: dict[str, Handler]) -> None:
        if "{" not in path:
            self.exact[path] = methods
            return
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path)
        self.patterns.append((re.compile(f"^{regex}$"), methods))

    def match(self, path: str) -> tuple[dict[str, Handler] | None, dict[str, str]]:
        methods = self.exact.get(path)
        if methods is not None:
            return methods, {}
        for pattern, methods in self.patterns:
            found = pattern.match(path)
            if found:
                return methods, found.groupdict()
        return None, {}


class _HttpProtocol(asyncio.Protocol):
    """One client connection: parse requests, run each handler, write its answer."""

    __slots__ = (
        "server",
        "transport",
        "parser",
        "closed",
        "paused",
        "keep_alive",
        "streaming",
        "_headers",
        "_url",
        "_body",
        "_body_size",
        "_pending",
        "_busy",
        "_drain_waiter",
        "_too_large",
    )

    def __init__(self, server: HttpServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.closed = False
        self.paused = False
        self.keep_alive = True
        self.streaming = False  # a StreamResponse has sent its head on this connection
        self._headers = Headers()
        self._url = b""
        self._body: list[bytes] = []
        self._body_size = 0
        self._too_large = False
        self._pending: deque[Request] = deque()
        self._busy = False
        self._drain_waiter: asyncio.Future[None] | None = None

    # --- transport callbacks -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.server.connections.discard(self)
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(ClientDisconnected("client connection closed"))

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._reject(
                b"HTTP/1.1 501 Not Implemented\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            )
        except httptools.HttpParserError:
            body = b'{"error":{"message":"Malformed HTTP request.","type":"invalid_request_error","param":null,"code":null}}'
            self._reject(
                b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
                b"connection: close\r\n\r\n%b" % (len(body), body)
            )

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        waiter = self._drain_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # --- parser callbacks --------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._headers = Headers()
        self._url = b""
        self._body = []
        self._body_size = 0
        self._too_large = False

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        headers = self._headers
        previous = dict.get(headers, key)
        dict.__setitem__(headers, key, text if previous is None else f"{previous}, {text}")

    def on_headers_complete(self) -> None:
        length = dict.get(self._headers, "content-length")
        if length is not None and length.isdigit() and int(length) > self.server.max_body:
            self._too_large = True
        elif self._headers.get("expect", "").lower() == "100-continue":
            self.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        if self._too_large:
            return
        self._body_size += len(body)
        if self._body_size > self.server.max_body:
            self._too_large = True
            self._body = []
            return
        self._body.append(body)

    def on_message_complete(self) -> None:
        method = self.parser.get_method().decode("latin-1")
        request = Request(method, self._url, self._headers, self)
        body = self._body
        request.body = body[0] if len(body) == 1 else b"".join(body)
        request.too_large = self._too_large
        if not self.parser.should_keep_alive() or self._too_large:
            self.keep_alive = False
        if self._busy:
            self._pending.append(request)  # pipelined: answer in order
        else:
            self._start(request)

    # --- running handlers --------------------------------------------------------------------

    def _start(self, request: Request) -> None:
        self._busy = True
        task = asyncio.get_running_loop().create_task(self._run(request))
        self.server.tasks.add(task)
        task.add_done_callback(self.server.tasks.discard)

    async def _run(self, request: Request) -> None:
        server = self.server
        try:
            response = await server.dispatch(request)
        except Exception:  # a bug must not kill the connection silently or leak a traceback
            log.exception("unhandled error in %s %s", request.method, request.path)
            if self.streaming:  # the answer had started: only a cut connection tells the client
                self.close()
                return
            response = json_response(
                {
                    "error": {
                        "message": "Internal gateway error.",
                        "type": "server_error",
                        "param": None,
                        "code": None,
                    }
                },
                500,
            )
        if isinstance(response, StreamResponse):
            if response.prepared:
                await response.write_eof()
            else:  # a stream response never started: send it as a whole (empty) answer
                self.write(Response.encode(response, self.keep_alive))
        else:
            self.write(response.encode(self.keep_alive and not server.closing))
        self.streaming = False
        if not self.keep_alive or server.closing:
            self.close()
            return
        if self._pending:
            self._start(self._pending.popleft())
        else:
            self._busy = False

    # --- writing -----------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if not self.closed and self.transport is not None:
            self.transport.write(data)

    async def drain(self) -> None:
        if not self.paused:
            return
        if self.closed:
            raise ClientDisconnected("client connection closed")
        waiter = self._drain_waiter
        if waiter is None or waiter.done():
            waiter = self._drain_waiter = asyncio.get_running_loop().create_future()
        await waiter

    def close(self) -> None:
        if not self.closed and self.transport is not None:
            self.closed = True
            self.transport.close()

    def close_if_idle(self) -> None:
        if not self._busy:
            self.close()

    def _reject(self, raw: bytes) -> None:
        self.write(raw)
        self.close()


class HttpServer:
    """Listens on one socket; `dispatch` routes each request to its handler."""

    def __init__(
        self,
        router: PathRouter,
        *,
        max_body: int,
        not_found: Handler,
        method_not_allowed: Callable[[Request, list[str]], Awaitable[Response]],
        before_route: Callable[[Request], Awaitable[Response | StreamResponse] | None]
        | None = None,
        app: Any = None,
    ) -> None:
        self.router = router
        self.max_body = max_body
        self.not_found = not_found
        self.method_not_allowed = method_not_allowed
        self.before_route = before_route
        self.app = app
        self.connections: set[_HttpProtocol] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.closing = False
        self._server: asyncio.base_events.Server | None = None

    async def dispatch(self, request: Request) -> Response | StreamResponse:
        if self.before_route is not None:
            early = self.before_route(request)
            if early is not None:
                return await early
        methods, params = self.router.match(request.path)
        if methods is None:
            return await self.not_found(request)
        handler = methods.get(request.method)
        if handler is None:
            return await self.method_not_allowed(request, sorted(methods))
        request.match_info = params
        return await handler(request)

    async def listen(
        self,
        host: str | None = None,
        port: int = 0,
        *,
        sock: Any = None,
        reuse_port: bool = False,
        backlog: int = 4096,
    ) -> int:
        loop = asyncio.get_running_loop()
        if sock is not None:
            self._server = await loop.create_server(
                lambda: _HttpProtocol(self), sock=sock, backlog=backlog
            )
        else:
            self._server = await loop.create_server(
                lambda: _HttpProtocol(self),
                host,
                port,
                backlog=backlog,
                reuse_port=reuse_port or None,
                reuse_address=True,
            )
        return self._server.sockets[0].getsockname()[1]

    async def shutdown(self, grace: float) -> None:
        """Stop accepting, let requests in flight finish within `grace` seconds, close the rest."""
        self.closing = True
        if self._server is not None:
            self._server.close()
        for connection in list(self.connections):
            connection.close_if_idle()
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=grace)
        for task in list(self.tasks):
            task.cancel()
        for connection in list(self.connections):
            connection.close()
        if self._server is not None:
            await self._server.wait_closed()
