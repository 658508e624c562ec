"""A slow OpenAI-compatible upstream: one token every `interval` ms, chunked SSE, keep-alive.

Each token's text is the sender's monotonic clock in ns, so a client on the same machine can
measure one-way delay as well as inter-token gaps. Tokens follow an absolute schedule
(start + k * interval) so the upstream itself adds no drift. Run as
`python -m bench.slow_upstream --port N --interval-ms 50 --tokens 200`.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import time

from bench import fixtures

HEAD = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: text/event-stream\r\n"
    b"Cache-Control: no-cache\r\n"
    b"Transfer-Encoding: chunked\r\n"
    b"\r\n"
)


def chunk(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(payload), payload)


class SlowStream(asyncio.Protocol):
    interval = 0.05
    tokens = 200

    def __init__(self) -> None:
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer:
            self.timer.cancel()
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.timer is None:
            self._maybe_start()

    def _maybe_start(self) -> None:
        head_end = self.buffer.find(b"\r\n\r\n")
        if head_end < 0:
            return
        length = 0
        for line in self.buffer[:head_end].split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if len(self.buffer) < head_end + 4 + length:
            return
        self.buffer = self.buffer[head_end + 4 + length :]
        assert self.transport is not None
        self.transport.write(HEAD)
        self.start = self.loop.time()
        self.sent = 0
        self.timer = self.loop.call_at(self.start + self.interval, self._tick)

    def _tick(self) -> None:
        if self.transport is None:
            return
        self.sent += 1
        self.transport.write(chunk(fixtures.slow_token_event(time.monotonic_ns())))
        if self.sent < self.tokens:
            self.timer = self.loop.call_at(self.start + (self.sent + 1) * self.interval, self._tick)
            return
        self.transport.write(chunk(fixtures.slow_stream_tail()) + b"0\r\n\r\n")
        self.timer = None
        if self.buffer:
            self._maybe_start()


async def serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        SlowStream, "127.0.0.1", port, backlog=4096, reuse_address=True
    )
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"slow upstream on 127.0.0.1:{port}", flush=True)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--interval-ms", type=float, default=50.0)
    parser.add_argument("--tokens", type=int, default=200)
    args = parser.parse_args()
    SlowStream.interval = args.interval_ms / 1000
    SlowStream.tokens = args.tokens
    run(serve(args.port))


def run(coro):
    """asyncio.run on uvloop when it is installed."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


if __name__ == "__main__":
    main()
