"""Loopback listeners for passthrough tests: one that records requests, one that only counts
connections (a port the allowlist refuses must never get one)."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web


class Recorder:
    """An allowlisted upstream on 127.0.0.1 that records every request it gets."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def start(self) -> Recorder:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def _handle(self, request: web.Request) -> web.Response:
        self.seen.append(
            {
                "method": request.method,
                "path_qs": request.raw_path,
                "headers": dict(request.headers),
                "body": await request.read(),
            }
        )
        return web.json_response({"ok": True})

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


class Counter:
    """A listener on a port the allowlist refuses: counts connections, answers nothing."""

    def __init__(self) -> None:
        self.connections = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> Counter:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        writer.close()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
