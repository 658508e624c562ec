"""A careless upstream: a real aiohttp server on 127.0.0.1 that answers every POST, whatever its
path and dialect, with scripted raw bytes. It quotes keys back in whatever escaping a test
writes, which the well-behaved fakes never do.

    Whole(status, body)          one body with that status (application/json), `headers` added
    Events(chunks, pause=0.02)   200 text/event-stream, each chunk its own write (and TCP
                                 segment: the fake waits `pause` between them), so a test can
                                 cut an event, or a key, across two chunks

The script is a queue; once it is empty `default` answers. Every request's Authorization /
x-api-key / api-key header is kept in `keys`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass

from aiohttp import web


@dataclass(frozen=True, slots=True)
class Whole:
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()  # extra response headers (Content-Encoding, ...)


@dataclass(frozen=True, slots=True)
class Events:
    chunks: tuple[bytes, ...]
    pause: float = 0.02


Answer = Whole | Events


class CarelessUpstream:
    def __init__(self, default: Answer | None = None) -> None:
        self.default: Answer = default or Whole(500, b'{"error":{"message":"no script"}}')
        self.script: deque[Answer] = deque()
        self.keys: list[str | None] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def queue(self, *answers: Answer) -> CarelessUpstream:
        self.script.extend(answers)
        return self

    async def start(self) -> CarelessUpstream:
        app = web.Application()
        app.router.add_route("POST", "/{tail:.*}", self._answer)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        headers = request.headers
        self.keys.append(
            headers.get("authorization") or headers.get("x-api-key") or headers.get("api-key")
        )
        answer = self.script.popleft() if self.script else self.default
        if isinstance(answer, Whole):
            response = web.Response(
                status=answer.status, body=answer.body, content_type="application/json"
            )
            for name, value in answer.headers:
                response.headers[name] = value
            return response
        response = web.StreamResponse(status=200, headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for chunk in answer.chunks:
            await response.write(chunk)
            await asyncio.sleep(answer.pause)
        await response.write_eof()
        return response
