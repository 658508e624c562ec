"""The minimal proxy on uvicorn (ASGI server, uvloop + httptools) and an aiohttp ClientSession.

A raw ASGI app, no framework. Single process: uvicorn.run with no `workers` (it then serves in
this process, one event loop), `loop="uvloop"`, `http="httptools"`, no access log. The client
session is opened in the lifespan startup, on the server's loop, with no connection limit.
Run through the benchmark (`python -m bench.run --scenarios baselines`) or:

    python -m bench.baselines.uvicorn_aiohttp --config bench-config.yaml --port 8080
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import aiohttp
import uvicorn

from bench.baselines.common import (
    READY_BODY,
    Rejected,
    Route,
    load_routes,
    parse_args,
    rewrite,
)

Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]
JSON = [(b"content-type", b"application/json")]
SSE = [(b"content-type", b"text/event-stream")]


class App:
    def __init__(self, routes: dict[str, Route]) -> None:
        self.routes = routes
        self.session: aiohttp.ClientSession | None = None

    async def __call__(self, scope: dict, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
        elif scope["type"] == "http":
            if scope["path"] == "/v1/chat/completions" and scope["method"] == "POST":
                await self.chat(receive, send)
            elif scope["path"] == "/readyz":
                await whole(send, 200, JSON, READY_BODY)
            else:
                await whole(send, 404, JSON, b"")

    async def lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.session is not None:
                    await self.session.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def chat(self, receive: Receive, send: Send) -> None:
        try:
            route, body, stream = rewrite(await read_body(receive), self.routes)
        except Rejected as rejected:
            await whole(send, rejected.status, JSON, rejected.body)
            return
        assert self.session is not None
        async with self.session.post(route.url, data=body, headers=route.headers) as upstream:
            if not stream:
                await whole(send, upstream.status, JSON, await upstream.read())
                return
            # No content-length: uvicorn sends the body chunked, each chunk as it is sent here.
            await send({"type": "http.response.start", "status": upstream.status, "headers": SSE})
            async for chunk in upstream.content.iter_any():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})


async def read_body(receive: Receive) -> bytes:
    parts = []
    while True:
        message = await receive()
        parts.append(message.get("body", b""))
        if not message.get("more_body"):
            return parts[0] if len(parts) == 1 else b"".join(parts)


async def whole(send: Send, status: int, headers: list, body: bytes) -> None:
    length = (b"content-length", str(len(body)).encode())
    await send({"type": "http.response.start", "status": status, "headers": [*headers, length]})
    await send({"type": "http.response.body", "body": body})


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    uvicorn.run(
        App(load_routes(args.config)),
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
