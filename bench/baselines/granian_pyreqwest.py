"""The minimal proxy on granian (Rust HTTP server, RSGI interface) and pyreqwest (Rust client).

Settings: one worker process (granian's parent supervises it), `runtime_mode="st"` with
`runtime_threads=1` (one Tokio thread for the server's I/O), HTTP/1 only, no websockets, the
uvloop event loop, no access log, asyncio tasks (granian's default `task_impl`). pyreqwest runs
its I/O on its own single-threaded Tokio runtime (its default), with no read-ahead on streams. Everything stays on the CPU the
bench pins the process to. Run through the benchmark (`python -m bench.run --scenarios
baselines`) or:

    python -m bench.baselines.granian_pyreqwest --config bench-config.yaml --port 8080
"""

from __future__ import annotations

import asyncio
import os

from granian.constants import HTTPModes, Interfaces, Loops, RuntimeModes
from granian.rsgi import HTTPProtocol, Scope
from granian.server import Server
from pyreqwest.client import Client, ClientBuilder

from bench.baselines.common import (
    READY_BODY,
    Rejected,
    Route,
    load_routes,
    parse_args,
    rewrite,
)

CONFIG_ENV = "APEX_BASELINE_CONFIG"  # how the config path reaches the worker process
JSON = [("content-type", "application/json")]
SSE = [("content-type", "text/event-stream")]


class App:
    """An RSGI application: `__rsgi_init__` runs on the worker's loop before the first request."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.client: Client | None = None

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.routes = load_routes(os.environ[CONFIG_ENV])
        self.client = ClientBuilder().build()

    async def __rsgi__(self, scope: Scope, proto: HTTPProtocol) -> None:
        if scope.proto != "http":
            return
        if scope.path == "/v1/chat/completions" and scope.method == "POST":
            await self.chat(proto)
        elif scope.path == "/readyz":
            proto.response_bytes(200, JSON, READY_BODY)
        else:
            proto.response_bytes(404, JSON, b"")

    async def chat(self, proto: HTTPProtocol) -> None:
        try:
            route, body, stream = rewrite(await proto(), self.routes)
        except Rejected as rejected:
            proto.response_bytes(rejected.status, JSON, rejected.body)
            return
        assert self.client is not None
        request = self.client.post(route.url).headers(route.headers).body_bytes(body)
        if not stream:
            upstream = await request.build().send()
            proto.response_bytes(upstream.status, JSON, bytes(await upstream.bytes()))
            return
        # pyreqwest's default read-ahead (64 KiB) would hold a stream back until that much has
        # arrived or it ended (measured: headers and every chunk at once, at the end): 0 relays
        # each chunk as it arrives, as the other proxies do.
        async with request.streamed_read_buffer_limit(0).build_streamed() as upstream:
            transport = proto.response_stream(upstream.status, SSE)
            reader = upstream.body_reader
            while (chunk := await reader.read_chunk()) is not None:
                await transport.send_bytes(bytes(chunk))


app = App()


def main() -> None:
    args = parse_args(__doc__.splitlines()[0])
    os.environ[CONFIG_ENV] = os.path.abspath(args.config)
    Server(
        "bench.baselines.granian_pyreqwest:app",
        address=args.host,
        port=args.port,
        interface=Interfaces.RSGI,
        workers=1,
        runtime_mode=RuntimeModes.st,
        runtime_threads=1,
        loop=Loops.uvloop,
        http=HTTPModes.http1,
        websockets=False,
        log_access=False,
    ).serve()


if __name__ == "__main__":
    main()
