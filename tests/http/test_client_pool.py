"""The per-origin pool: cap and wait queue, pool timeout, idle expiry, the safe retry."""

from __future__ import annotations

import asyncio

import pytest
from client_support import Close, RawUpstream, Silent, client, ok, read_request, timeouts

from apex_ai_proxy.http import ClientOptions, UpstreamConnectionError, UpstreamTimeout


async def test_open_connections_per_origin_are_capped_and_the_rest_wait_their_turn():
    open_now = peak = 0

    async def serve(reader, writer):
        nonlocal open_now, peak
        open_now += 1
        peak = max(peak, open_now)
        while await read_request(reader) is not None:
            await asyncio.sleep(0.05)
            writer.write(ok())
            await writer.drain()
        open_now -= 1
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
    http = client()
    options = ClientOptions(max_connections=2, pool_timeout=5)

    async def one() -> bytes:
        response = await http.send("GET", url, {}, None, timeouts(), options=options)
        return await response.read()

    bodies = await asyncio.gather(*(one() for _ in range(8)))
    await http.close()
    server.close()
    assert bodies == [b"hello"] * 8
    assert peak == 2


async def test_pool_timeout_when_every_connection_stays_busy():
    async with RawUpstream(lambda r: Silent()) as upstream:
        http = client()
        options = ClientOptions(max_connections=1, pool_timeout=0.2)
        busy = asyncio.ensure_future(
            http.send("GET", upstream.url, {}, None, timeouts(), options=options)
        )
        await asyncio.sleep(0.1)
        started = asyncio.get_running_loop().time()
        with pytest.raises(UpstreamTimeout, match="pool timeout"):
            await http.send("GET", upstream.url, {}, None, timeouts(), options=options)
        assert asyncio.get_running_loop().time() - started < 1.0
        busy.cancel()
        await http.close()
    assert upstream.connections == 1


async def test_waiter_gets_the_connection_a_finished_request_releases():
    async with RawUpstream(lambda r: ok()) as upstream:
        http = client()
        options = ClientOptions(max_connections=1, pool_timeout=2)
        first = await http.send("GET", upstream.url, {}, None, timeouts(), options=options)
        second = asyncio.ensure_future(
            http.send("GET", upstream.url, {}, None, timeouts(), options=options)
        )
        await asyncio.sleep(0.05)
        assert not second.done()  # waiting for the only slot
        await first.read()
        assert await (await second).read() == b"hello"
        await http.close()
    assert upstream.connections == 1


async def test_idle_connection_older_than_idle_timeout_is_not_reused():
    async with RawUpstream(lambda r: ok()) as upstream:
        http = client()
        options = ClientOptions(idle_timeout=0.1)
        for _ in range(2):
            response = await http.send("GET", upstream.url, {}, None, timeouts(), options=options)
            await response.read()
            await asyncio.sleep(0.3)
        await http.close()
    assert upstream.connections == 2


async def test_idle_connections_are_swept_without_a_new_request():
    closed = asyncio.Event()

    async def serve(reader, writer):
        await read_request(reader)
        writer.write(ok())
        await writer.drain()
        await reader.read()  # returns at EOF: the client closed its side
        closed.set()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
    http = client()
    response = await http.send(
        "GET", url, {}, None, timeouts(), options=ClientOptions(idle_timeout=0.1)
    )
    await response.read()
    await asyncio.wait_for(closed.wait(), 3)
    await http.close()
    server.close()


async def test_reused_connection_closed_before_answering_is_retried_once_on_a_new_one():
    calls = []

    def respond(request):
        calls.append(request)
        return ok() if len(calls) != 2 else Close(b"")  # the 2nd request meets a closing socket

    async with RawUpstream(respond) as upstream:
        http = client()
        for _ in range(2):
            response = await http.send("POST", upstream.url, {}, b"{}", timeouts())
            assert await response.read() == b"hello"
        await http.close()
    assert (len(calls), upstream.connections) == (3, 2)


async def test_reused_connection_reset_on_write_is_retried_on_a_new_connection():
    connections = []

    async def serve(reader, writer):
        connections.append(writer)
        await read_request(reader)
        writer.write(ok())
        await writer.drain()
        if len(connections) == 1:
            # reset (RST) as soon as the next request arrives: SO_LINGER 0, then close
            await reader.read(1)
            import socket
            import struct

            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
    http = client()
    for _ in range(2):
        response = await http.send("POST", url, {}, b"{}", timeouts())
        assert await response.read() == b"hello"
    await http.close()
    server.close()
    assert len(connections) == 2


async def test_failure_on_a_new_connection_is_not_retried():
    async with RawUpstream(lambda r: Close(b"")) as upstream:
        http = client()
        with pytest.raises(UpstreamConnectionError, match="closed the connection"):
            await http.send("POST", upstream.url, {}, b"{}", timeouts())
        await http.close()
    assert len(upstream.requests) == 1


async def test_idle_connection_sending_unsolicited_bytes_is_never_reused():
    accepted = []

    async def serve(reader, writer):
        accepted.append(writer)
        if len(accepted) == 1:
            await read_request(reader)
            writer.write(ok(b"first"))
            await writer.drain()
            await asyncio.sleep(0.05)
            # nobody asked: a confused upstream starts an answer it never finishes
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 500\r\n\r\nstale")
            await writer.drain()
        while await read_request(reader) is not None:
            writer.write(ok(b"answered"))
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
    http = client()
    response = await http.send("GET", url, {}, None, timeouts())
    assert await response.read() == b"first"
    await asyncio.sleep(0.2)
    response = await http.send("GET", url, {}, None, timeouts())
    assert await response.read() == b"answered"
    await http.close()
    server.close()


async def test_half_closed_idle_connection_is_not_reused():
    async def serve(reader, writer):
        if await read_request(reader) is None:
            return
        writer.write(ok())
        await writer.drain()
        writer.write_eof()  # half-close: we send nothing more, but never close the socket
        await reader.read()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
    http = client()
    for _ in range(2):
        response = await http.send("GET", url, {}, None, timeouts(read=30))
        assert await asyncio.wait_for(response.read(), 2) == b"hello"
        await asyncio.sleep(0.1)
    await http.close()
    server.close()


async def test_extra_response_sent_with_the_answer_is_never_read_as_the_next_answer():
    accepted = []

    def respond(request):
        accepted.append(request)
        return ok(b"first") + ok(b"stale") if len(accepted) == 1 else ok(b"answered")

    async with RawUpstream(respond) as upstream:
        http = client()
        for expected in (b"first", b"answered"):
            response = await http.send("GET", upstream.url, {}, None, timeouts())
            assert await response.read() == expected
        await http.close()
