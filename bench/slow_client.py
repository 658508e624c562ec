"""Many concurrent slow streams: open N streams, record every token's gap and one-way delay.

An asyncio Protocol client rather than aiohttp: at 2,000 streams x 20 tokens/s it handles 40,000
chunks a second on the load CPU, and aiohttp's per-chunk cost there would show up as delay that
is not the gateway's. Run as `python -m bench.slow_client --url URL --streams N ...`; prints JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import re
import time
from array import array
from urllib.parse import urlsplit

from bench import fixtures
from bench.slow_upstream import run
from bench.tools import raise_open_files_limit

TOKEN = re.compile(rb'"content":"(\d+) ')


class StreamClient(asyncio.Protocol):
    """One request, one streamed answer; decodes chunked transfer encoding if used."""

    def __init__(self, request: bytes, gaps: array, delays: array) -> None:
        self.request, self.gaps, self.delays = request, gaps, delays
        self.done: asyncio.Future = asyncio.get_running_loop().create_future()
        self.head = b""
        self.status = 0
        self.chunked: bool | None = None
        self.raw = b""  # undecoded chunked bytes
        self.body = b""  # decoded bytes not yet split into events
        self.tokens = 0
        self.finished = False
        self.sent_ns = 0
        self.first_ns = 0
        self.last_ns = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.sent_ns = time.monotonic_ns()
        transport.write(self.request)  # type: ignore[attr-defined]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result("closed" if self.finished else "connection closed before [DONE]")

    def data_received(self, data: bytes) -> None:
        now = time.monotonic_ns()
        if self.chunked is None:
            self.head += data
            end = self.head.find(b"\r\n\r\n")
            if end < 0:
                return
            head, data = self.head[:end].lower(), self.head[end + 4 :]
            self.status = int(head.split(b" ", 2)[1])
            self.chunked = b"transfer-encoding: chunked" in head
            if self.status != 200:
                self._finish(f"status {self.status}")
                return
        if self.chunked:
            data = self._dechunk(data)
        self._events(data, now)

    def _dechunk(self, data: bytes) -> bytes:
        self.raw += data
        out = []
        while True:
            line_end = self.raw.find(b"\r\n")
            if line_end < 0:
                break
            size = int(self.raw[:line_end].split(b";")[0], 16)
            if size == 0:
                self.raw = b""
                break
            if len(self.raw) < line_end + 2 + size + 2:
                break
            out.append(self.raw[line_end + 2 : line_end + 2 + size])
            self.raw = self.raw[line_end + 4 + size :]
        return b"".join(out)

    def _events(self, data: bytes, now: int) -> None:
        self.body += data
        cut = self.body.rfind(b"\n\n")
        if cut < 0:
            return
        complete, self.body = self.body[: cut + 2], self.body[cut + 2 :]
        for sent in TOKEN.findall(complete):
            self.delays.append((now - int(sent)) // 1000)
            if self.tokens:
                self.gaps.append((now - self.last_ns) // 1000)
            else:
                self.first_ns = now
            self.last_ns = now
            self.tokens += 1
        if b"data: [DONE]" in complete:
            self.finished = True
            self._finish("ok")

    def _finish(self, outcome: str) -> None:
        if not self.done.done():
            self.done.set_result(outcome)
        self.transport.close()


def percentiles(values: array, scale: float = 1.0, offset: float = 0.0) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    n = len(ordered)

    def at(q: float) -> float:
        return round(ordered[min(n - 1, int(q * n))] * scale - offset, 3)

    return {"p50": at(0.5), "p90": at(0.9), "p99": at(0.99), "p999": at(0.999), "max": at(1.0)}


async def run_streams(
    url: str, model: str, streams: int, tokens: int, interval_ms: float, ramp_s: float
) -> dict:
    parts = urlsplit(url)
    body = fixtures.openai_request(model, stream=True)
    request = (
        f"POST {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {fixtures.GATEWAY_TOKEN}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    loop = asyncio.get_running_loop()
    gaps, delays, ttft = array("q"), array("q"), array("q")
    outcomes: collections.Counter[str] = collections.Counter()
    token_counts = collections.Counter()
    deadline = loop.time() + ramp_s + tokens * interval_ms / 1000 * 2 + 30

    async def one(i: int) -> None:
        await asyncio.sleep(ramp_s * i / streams)
        client = StreamClient(request, gaps, delays)
        try:
            await asyncio.wait_for(
                loop.create_connection(lambda: client, parts.hostname, parts.port),
                deadline - loop.time(),
            )
            outcome = await asyncio.wait_for(asyncio.shield(client.done), deadline - loop.time())
        except (TimeoutError, OSError) as exc:
            outcome = f"{type(exc).__name__}: {exc}"[:80] or "timeout"
            if getattr(client, "transport", None):
                client.transport.close()
        if outcome == "ok" and client.tokens != tokens:
            outcome = f"got {client.tokens} of {tokens} tokens"
        outcomes[outcome] += 1
        token_counts[client.tokens] += 1
        if client.first_ns:
            ttft.append((client.first_ns - client.sent_ns) // 1000)

    started = time.monotonic()
    await asyncio.gather(*(one(i) for i in range(streams)))
    interval_us = interval_ms * 1000
    return {
        "streams": streams,
        "completed": outcomes.get("ok", 0),
        "all_completed": outcomes.get("ok", 0) == streams,
        "failures": {k: v for k, v in outcomes.items() if k != "ok"},
        "tokens_per_stream": tokens,
        "interval_ms": interval_ms,
        "wall_s": round(time.monotonic() - started, 2),
        "added_gap_ms": percentiles(gaps, 1e-3, interval_us * 1e-3),
        "delay_ms": percentiles(delays, 1e-3),
        "ttft_ms": percentiles(ttft, 1e-3),
        "gaps_measured": len(gaps),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--model", default="bench-slow")
    parser.add_argument("--streams", type=int, default=2000)
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--interval-ms", type=float, default=50.0)
    parser.add_argument("--ramp-s", type=float, default=1.0)
    args = parser.parse_args()
    raise_open_files_limit()
    result = run(
        run_streams(args.url, args.model, args.streams, args.tokens, args.interval_ms, args.ramp_s)
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
