"""A tiny echo app on our HttpServer, and a raw socket client that sends exact bytes.

EchoServer(limits, delay)   answers every request with JSON: method, target, headers, body
exchange(port, data)        send bytes, read until the server closes (or `wait` passes)
parse_responses(data)       the responses in a byte stream: status, headers, body
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from dataclasses import dataclass, field

import orjson

from apex_ai_proxy.errors import protocol_error_body
from apex_ai_proxy.http import (
    HttpServer,
    PathRouter,
    Request,
    Response,
    ServerLimits,
    json_response,
)

FAST = ServerLimits(header_timeout=0.4, body_timeout=0.4, keep_alive_timeout=0.4)


class EchoServer:
    def __init__(
        self,
        limits: ServerLimits | None = None,
        delay: float = 0.0,
        early_check=None,
        answer=None,
    ) -> None:
        self.limits = limits or ServerLimits()
        self.delay = delay
        self.early_check = early_check
        self.answer = answer  # Request -> Response, instead of the echo
        self.calls: list[Request] = []
        self.server: HttpServer | None = None
        self.port = 0

    async def handle(self, request: Request) -> Response:
        self.calls.append(request)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.answer is not None:
            return self.answer(request)
        return json_response(
            {
                "method": request.method,
                "target": request.raw_path_qs,
                "headers": dict(request.headers),
                "body": base64.b64encode(request.body).decode(),
            }
        )

    async def not_allowed(self, request: Request, allowed: list[str]) -> Response:
        return await self.handle(request)

    async def start(self) -> EchoServer:
        self.server = HttpServer(
            PathRouter(),
            not_found=self.handle,
            method_not_allowed=self.not_allowed,
            early_check=self.early_check,
            limits=self.limits,
            error_body=protocol_error_body,
        )
        self.port = await self.server.listen("127.0.0.1", 0)
        return self

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.shutdown(0.5)


async def exchange(
    port: int, data: bytes | list[bytes], *, wait: float = 3.0, half_close: bool = False
) -> bytes:
    """Send `data` (a list: one write each), read until the server closes or `wait` passes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for part in [data] if isinstance(data, bytes) else data:
            writer.write(part)
            await writer.drain()
        if half_close:
            writer.write_eof()
        return await read_until_close(reader, wait)
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def read_until_close(reader: asyncio.StreamReader, wait: float) -> bytes:
    received = b""
    deadline = time.monotonic() + wait
    with contextlib.suppress(TimeoutError, ConnectionError):
        while True:
            chunk = await asyncio.wait_for(reader.read(65536), deadline - time.monotonic())
            if not chunk:
                break
            received += chunk
    return received


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None

    def json(self) -> dict:
        return orjson.loads(self.body)


def parse_responses(data: bytes) -> list[Reply]:
    """Every complete response in `data` (Content-Length or chunked bodies; 1xx have none)."""
    replies = []
    while data:
        head, sep, rest = data.partition(b"\r\n\r\n")
        if not sep:
            break
        lines = head.decode("latin-1").split("\r\n")
        reply = Reply(int(lines[0].split(" ")[1]))
        for line in lines[1:]:
            name, _, value = line.partition(":")
            reply.headers.append((name.lower(), value.strip()))
        if reply.header("transfer-encoding") == "chunked":
            body = b""
            while True:
                size_line, _, rest = rest.partition(b"\r\n")
                size = int(size_line, 16)
                body, rest = body + rest[:size], rest[size + 2 :]
                if size == 0:
                    break
            reply.body = body
        else:
            length = int(reply.header("content-length") or 0)
            reply.body, rest = rest[:length], rest[length:]
        replies.append(reply)
        data = rest
    return replies


def statuses(data: bytes) -> list[int]:
    return [reply.status for reply in parse_responses(data)]
