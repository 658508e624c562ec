"""Raw upstreams for the HTTP client tests: asyncio servers on 127.0.0.1 that write exact bytes.

    RawUpstream(answer)      every request read off a connection gets `answer(request)`: bytes
                             to write, then the connection is kept open (keep-alive) unless the
                             answer is a `Close(bytes)` (write, then close) or `Silent()` (write
                             nothing, keep the connection)
    upstream.url             http://127.0.0.1:<port>
    upstream.requests        every request head + body received, in order
    upstream.connections     how many connections were accepted

`client()` / `timeouts()` give an `HttpClient` and short timeouts for a test.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

from apex_ai_proxy.http import HttpClient, Timeouts


@dataclass
class Close:
    data: bytes = b""


@dataclass
class Silent:
    pass


Answer = bytes | Close | Silent


@dataclass
class Received:
    head: bytes
    body: bytes

    @property
    def request_line(self) -> bytes:
        return self.head.split(b"\r\n", 1)[0]

    def header(self, name: str) -> list[str]:
        found = []
        for line in self.head.split(b"\r\n")[1:]:
            key, _, value = line.partition(b":")
            if key.strip().lower() == name.lower().encode():
                found.append(value.strip().decode("latin-1"))
        return found


@dataclass
class RawUpstream:
    answer: Callable[[Received], Answer]
    requests: list[Received] = field(default_factory=list)
    connections: int = 0
    writers: list[asyncio.StreamWriter] = field(default_factory=list)
    server: asyncio.Server | None = None
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, **kwargs) -> RawUpstream:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, **kwargs)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        for writer in self.writers:
            writer.close()
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 1)

    async def __aenter__(self) -> RawUpstream:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.append(writer)
        try:
            while True:
                request = await read_request(reader)
                if request is None:
                    break
                self.requests.append(request)
                answer = self.answer(request)
                if isinstance(answer, Silent):
                    continue
                writer.write(answer.data if isinstance(answer, Close) else answer)
                await writer.drain()
                if isinstance(answer, Close):
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


async def read_request(reader: asyncio.StreamReader) -> Received | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    length = 0
    for line in head.split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == b"content-length":
            length = int(value)
    body = await reader.readexactly(length) if length else b""
    return Received(head, body)


def client() -> HttpClient:
    return HttpClient()


def timeouts(total: float = 5.0, connect: float = 2.0, read: float = 2.0) -> Timeouts:
    return Timeouts(total, connect, read)


def ok(body: bytes = b"hello", extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n%s\r\n%s" % (len(body), extra, body)
