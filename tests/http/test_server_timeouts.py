"""Timeouts are per-connection state: a head, a body or an idle connection that stalls is closed
(408 when a request had started, a quiet close otherwise). Short timeouts keep these fast."""

from __future__ import annotations

import asyncio
import time

from http_support import FAST, exchange, parse_responses, read_until_close, statuses


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
