"""What the server writes: whole and streamed responses, and the one place headers are written.

A header name that is not an RFC 9110 token, or a value carrying CR, LF or NUL, is never written:
it is dropped (and logged once per name). Values reach headers from requests (a model name
becomes `x-apex-model`) and from upstreams, so this is the last line against header injection.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable
from email.utils import formatdate
from itertools import chain
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from .protocol import HttpProtocol
    from .request import Request

log = logging.getLogger("apex_ai_proxy.http")

REASONS = {
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
    413: "Content Too Large",
    414: "URI Too Long",
    415: "Unsupported Media Type",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    499: "Client Closed Request",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    505: "HTTP Version Not Supported",
    529: "Overloaded",
}
HIGH_WATER = 256 * 1024  # bytes buffered towards a slow client before a writer waits
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


def _status_line(status: int, reason: str | None = None) -> str:
    return f"HTTP/1.1 {status} {reason or REASONS.get(status, 'Unknown')}\r\n"


_STATUS_LINES = {status: _status_line(status) for status in REASONS}  # formatted once


class _DateHeader:
    """`date:` changes once a second; format it once a second, not once a request."""

    def __init__(self) -> None:
        self.second = 0
        self.value = ""

    def get(self) -> str:
        now = int(time.time())
        if now != self.second:
            self.second = now
            self.value = "date: " + formatdate(now, usegmt=True) + "\r\n"
        return self.value


_date = _DateHeader()

# --- header safety ----------------------------------------------------------------------------

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_second = itemgetter(1)  # the value of a (name, value) pair
_good_names: set[str] = set()  # names already checked; bounded below
_warned: set[str] = set()


def _name_ok(name: str) -> bool:
    if name in _good_names:
        return True
    if not isinstance(name, str) or _TOKEN.fullmatch(name) is None:
        return False
    if len(_good_names) < 4096:  # names come from code and upstreams; cap what a flood can add
        _good_names.add(name)
    return True


def _header_block(headers: dict[str, Any], raw: list[tuple[str, Any]]) -> str:
    """`name: value\\r\\n` lines, every one checked. The common case (all str) is a few C calls
    and no Python step per header: the lines joined, and the values joined and searched for CR,
    LF and NUL (memchr); names seen before pass by one subset test."""
    try:
        if raw:
            values = "".join(chain(headers.values(), map(_second, raw)))
            block = "\r\n".join(map(": ".join, chain(headers.items(), raw)))
        else:
            values = "".join(headers.values())
            block = "\r\n".join(map(": ".join, headers.items()))
    except TypeError:  # a name or value that is not a str (an int): formatted line by line
        return _checked_block(headers, raw)
    if (
        "\n" in values
        or "\r" in values
        or "\x00" in values
        or not (headers.keys() <= _good_names or all(_name_ok(name) for name in headers))
        or (raw and not all(_name_ok(name) for name, _ in raw))
    ):
        return "".join(_safe_line(n, v) for n, v in (*headers.items(), *raw))
    return block + "\r\n" if block else block


def _checked_block(headers: dict[str, Any], raw: list[tuple[str, Any]]) -> str:
    """Any names and values: with one CR and one LF per line and no NUL, no value can have
    smuggled a line in."""
    lines = [f"{name}: {value}\r\n" for name, value in (*headers.items(), *raw)]
    block = "".join(lines)
    count = len(lines)
    if (
        block.count("\n") == count
        and block.count("\r") == count
        and "\x00" not in block
        and all(_name_ok(name) for name, _ in (*headers.items(), *raw))
    ):
        return block
    return "".join(_safe_line(n, v) for n, v in (*headers.items(), *raw))


def _safe_line(name: Any, value: Any) -> str:
    text = str(value)
    if _name_ok(name) and "\r" not in text and "\n" not in text and "\x00" not in text:
        return f"{name}: {text}\r\n"
    shown = repr(name)[:64]
    if shown not in _warned and len(_warned) < 256:
        _warned.add(shown)
        log.warning("dropped response header %s: invalid name or CR/LF/NUL in its value", shown)
    return ""


# --- responses --------------------------------------------------------------------------------


class ClientDisconnected(ConnectionResetError):
    """The client went away while its answer was being written."""


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

    def _head(self, extra: str) -> bytes:
        """Status line, date, headers and `extra` (framing lines and the blank line)."""
        reason = self.reason
        if reason is None:
            line = _STATUS_LINES.get(self.status) or _status_line(self.status)
        elif "\r" in reason or "\n" in reason or "\x00" in reason:
            line = _status_line(self.status)
        else:
            line = _status_line(self.status, reason)
        # _date.get() inlined for the usual case (same second): no call per response
        date = _date.value if _date.second == int(time.time()) else _date.get()
        head = line + date + _header_block(self.headers, self.raw_headers) + extra
        return head.encode("latin-1", "replace")

    def encode(self, keep_alive: bool, head_only: bool = False) -> bytes:
        """The whole answer; `head_only` for HEAD requests (the length, but no body)."""
        extra = f"content-length: {len(self.body)}\r\n"
        if not keep_alive:
            extra += "connection: close\r\n"
        head = self._head(extra + "\r\n")
        return head if head_only else head + self.body


def json_response(data: Any, status: int = 200) -> Response:
    return Response(status, orjson.dumps(data), content_type="application/json")


# Renders an error the server answers itself as a JSON body: (status, message, request path).
# The gateway passes its own (errors.protocol_error_body), so these answers take the shape of
# the API the path belongs to; this layer knows HTTP, not the APIs served over it.
ErrorBody = Callable[[int, str, str], bytes]


def protocol_error(
    status: int, message: str, path: str = "", error_body: ErrorBody | None = None
) -> Response:
    """An error the server answers itself (400/408/413/414/431/500/501/505): JSON from
    `error_body`, or plain text when the server was given none."""
    if error_body is None:
        return Response(status, message.encode() + b"\n", content_type="text/plain; charset=utf-8")
    return Response(status, error_body(status, message, path), content_type="application/json")


INTERNAL_ERROR = "Internal gateway error."  # a handler failed: the log has the traceback


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
        self._protocol: HttpProtocol | None = None
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
        keep = "" if protocol.keep_alive else "connection: close\r\n"
        # A relayed answer that states its length (or has no body) is sent as it is, unchunked.
        has_length = "content-length" in self.headers or any(
            name.lower() == "content-length" for name, _ in self.raw_headers
        )
        if has_length or self.status in (204, 304) or self.status < 200 or request.method == "HEAD":
            self._chunked = False
            self.body = self._head(keep + "\r\n")
        else:
            self.body = self._head("transfer-encoding: chunked\r\n" + keep + "\r\n")

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
