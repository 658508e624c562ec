"""Timeouts are per-connection state: a head, a body or an idle connection that stalls is closed
(408 when a request had started, a quiet close otherwise). Short timeouts keep these fast."""

from __future__ import annotations

import asyncio
import socket
import time

from http_support import FAST, exchange, parse_responses, read_until_close, statuses

from apex_ai_proxy.http import HttpServer, PathRouter, Request, ServerLimits, StreamResponse
from apex_ai_proxy.http.server.responses import ClientDisconnected


async def _timed(port: int, parts: list[bytes], pause: float = 0.0) -> tuple[bytes, float]:
    """Send `parts` with `pause` between them; the bytes received and when the server closed."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    reading = asyncio.create_task(read_until_close(reader, 5))  # read while sending: a reset
    try:  # after the server closed would throw away what it said
        for part in parts:
            if reading.done():
                break
            try:
                writer.write(part)
                await writer.drain()
            except ConnectionError:
                break
            await asyncio.sleep(pause)
        received = await reading
        return received, time.monotonic() - started
    finally:
        writer.close()


async def test_half_sent_head_then_silence_gets_408_and_close(echo_server):
    server = await echo_server(limits=FAST)
    received, elapsed = await _timed(server.port, [b"GET /x HTTP/1.1\r\nhost: a\r\n"])
    [reply] = parse_responses(received)
    assert reply.status == 408
    assert reply.header("connection") == "close"
    assert elapsed < 2
    assert server.calls == []


async def test_head_sent_a_byte_at_a_time_is_bounded_by_the_header_timeout(echo_server):
    server = await echo_server(limits=FAST)
    dribble = [bytes([b]) for b in b"GET /x HTTP/1.1\r\nhost: a\r\nx-slow: " + b"a" * 100]
    received, elapsed = await _timed(server.port, dribble, pause=0.05)
    assert statuses(received) == [408]
    assert elapsed < 2.5  # 100+ bytes at 50 ms each would take over 5 s


async def test_connection_that_sends_nothing_is_closed_quietly(echo_server):
    server = await echo_server(limits=FAST)
    received, elapsed = await _timed(server.port, [])
    assert received == b""
    assert elapsed < 2


async def test_body_that_stops_half_way_gets_408_and_close(echo_server):
    server = await echo_server(limits=FAST)
    head = b"POST /x HTTP/1.1\r\nhost: a\r\ncontent-length: 100\r\n\r\n"
    received, elapsed = await _timed(server.port, [head + b"a" * 50])
    [reply] = parse_responses(received)
    assert reply.status == 408
    assert reply.header("connection") == "close"
    assert elapsed < 2
    assert server.calls == []


async def test_slow_body_with_steady_reads_is_not_timed_out(echo_server):
    server = await echo_server(limits=FAST)
    head = b"POST /x HTTP/1.1\r\nhost: a\r\ncontent-length: 10\r\nconnection: close\r\n\r\n"
    parts = [head] + [b"a"] * 10  # 10 reads 0.15 s apart: 1.5 s in all, never 0.4 s silent
    received, _ = await _timed(server.port, parts, pause=0.15)
    assert statuses(received) == [200]


async def test_idle_keep_alive_connection_is_closed(echo_server):
    server = await echo_server(limits=FAST)
    received, elapsed = await _timed(server.port, [b"GET /x HTTP/1.1\r\nhost: a\r\n\r\n"])
    assert statuses(received) == [200]  # answered, then closed when idle, without a 408
    assert elapsed < 2


async def test_a_slow_handler_is_not_timed_out(echo_server):
    server = await echo_server(limits=FAST, delay=1.0)
    request = b"GET /x HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n"
    received = await exchange(server.port, request)
    assert statuses(received) == [200]


async def test_client_that_stops_reading_a_stream_is_cut_off_after_the_write_timeout():
    """A client that sends a request and reads nothing of the answer: once the transport's
    buffer is full, the stream waits on it; after write_timeout the connection is aborted and
    the handler's write raises, so it stops producing (a relay would close its upstream)."""
    outcome: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def endless(request: Request) -> StreamResponse:
        response = StreamResponse(200, {"content-type": "text/event-stream"})
        await response.prepare(request)
        try:
            while True:
                await response.write(b"data: " + b"x" * 16_000 + b"\n\n")
        except (ConnectionError, ClientDisconnected) as exc:
            outcome.set_result(type(exc).__name__)
            raise

    limits = ServerLimits(write_timeout=0.5)
    server = stream_server(endless, limits)
    port = await server.listen("127.0.0.1", 0)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    try:
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        await asyncio.get_running_loop().sock_sendall(sock, b"GET /s HTTP/1.1\r\nhost: a\r\n\r\n")
        started = time.monotonic()
        cut_off = await asyncio.wait_for(outcome, 5)  # never read a byte
        assert 0.5 <= time.monotonic() - started < 2.5
        assert cut_off
        assert not server.connections
    finally:
        sock.close()
        await server.shutdown(0.5)


async def test_a_slow_reader_that_keeps_reading_is_never_cut_off():
    """Reading slowly but steadily (never a whole write_timeout without progress) is fine."""
    chunks = 40

    async def finite(request: Request) -> StreamResponse:
        response = StreamResponse(200, {"content-type": "text/event-stream"})
        await response.prepare(request)
        for _ in range(chunks):
            await response.write(b"data: " + b"y" * 16_000 + b"\n\n")
        await response.write_eof()
        return response

    server = stream_server(finite, ServerLimits(write_timeout=0.5))
    port = await server.listen("127.0.0.1", 0)
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=8192)
    try:
        writer.write(b"GET /s HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n")
        received = 0
        while chunk := await reader.read(32_000):
            received += len(chunk)
            await asyncio.sleep(0.05)  # ~600 KB/s: slower than the server writes
        assert received > chunks * 16_000
    finally:
        writer.close()
        await server.shutdown(0.5)


def stream_server(handler, limits: ServerLimits) -> HttpServer:
    async def not_allowed(request: Request, allowed: list[str]) -> StreamResponse:
        return await handler(request)

    return HttpServer(
        PathRouter(), not_found=handler, method_not_allowed=not_allowed, limits=limits
    )
