"""Pipelined requests are answered in order; the queue is bounded and reading pauses when full."""

from __future__ import annotations

import asyncio

from http_support import exchange, parse_responses, read_until_close

from apex_ai_proxy.http import ServerLimits


async def test_two_pipelined_requests_in_one_write_are_both_answered_in_order(echo_server):
    server = await echo_server()
    both = b"GET /first HTTP/1.1\r\nhost: a\r\n\r\nGET /second HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n"
    replies = parse_responses(await exchange(server.port, both))
    assert [r.json()["target"] for r in replies] == ["/first", "/second"]
    assert replies[0].header("connection") is None  # the first one kept the connection open
    assert replies[1].header("connection") == "close"


async def test_pipelined_requests_behind_a_slow_answer_keep_their_order(echo_server):
    server = await echo_server(delay=0.05)
    requests = b"".join(b"GET /%d HTTP/1.1\r\nhost: a\r\n\r\n" % i for i in range(5))
    requests += b"GET /last HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n"
    replies = parse_responses(await exchange(server.port, requests))
    assert [r.json()["target"] for r in replies] == [f"/{i}" for i in range(5)] + ["/last"]


async def test_nothing_after_a_request_that_says_close_is_read(echo_server):
    server = await echo_server()
    data = (
        b"GET /a HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\nGET /b HTTP/1.1\r\nhost: a\r\n\r\n"
    )
    replies = parse_responses(await exchange(server.port, data))
    assert [r.json()["target"] for r in replies] == ["/a"]
    assert [c.path for c in server.calls] == ["/a"]


async def test_reading_pauses_while_the_pipeline_queue_is_full_then_resumes(echo_server):
    server = await echo_server(limits=ServerLimits(max_pipelined=2), delay=0.2)
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        for i in range(3):  # one running, two queued: the queue is full
            writer.write(b"GET /%d HTTP/1.1\r\nhost: a\r\n\r\n" % i)
            await writer.drain()
            await asyncio.sleep(0.02)
        protocol = next(iter(server.server.connections))
        assert len(protocol._pending) == 2
        assert protocol._reading_paused
        for i in range(3, 8):  # wait in the socket buffer, read once the queue has room
            writer.write(b"GET /%d HTTP/1.1\r\nhost: a\r\n\r\n" % i)
        writer.write(b"GET /last HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.05)
        assert len(protocol._pending) == 2  # still paused: nothing more was parsed
        replies = parse_responses(await read_until_close(reader, 5))
    finally:
        writer.close()
    assert [r.json()["target"] for r in replies] == [f"/{i}" for i in range(8)] + ["/last"]


async def test_a_read_of_more_pipelined_requests_than_the_queue_holds_is_served(echo_server):
    server = await echo_server(limits=ServerLimits(max_pipelined=2))
    flood = b"".join(b"GET /%d HTTP/1.1\r\nhost: a\r\n\r\n" % i for i in range(50))
    flood += b"GET /last HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n"
    replies = parse_responses(await exchange(server.port, flood))
    assert [r.json()["target"] for r in replies] == [f"/{i}" for i in range(50)] + ["/last"]


async def test_pipelined_requests_past_the_hard_cap_are_not_buffered(echo_server):
    server = await echo_server(limits=ServerLimits(max_pipelined=2))  # hard cap: 128 queued
    flood = b"".join(b"GET /%d HTTP/1.1\r\nhost: a\r\n\r\n" % i for i in range(400))
    replies = parse_responses(await exchange(server.port, flood))
    # one running + 128 queued are answered in order, then the connection closes
    assert [r.json()["target"] for r in replies] == [f"/{i}" for i in range(129)]
    assert len(server.calls) == 129


async def test_a_protocol_error_behind_a_running_answer_waits_its_turn(echo_server):
    server = await echo_server(delay=0.1)
    data = b"GET /ok HTTP/1.1\r\nhost: a\r\n\r\nGET /bad HTTP/2.0\r\n\r\n"
    replies = parse_responses(await exchange(server.port, data))
    assert [r.status for r in replies] == [200, 505]
    assert replies[0].json()["target"] == "/ok"
