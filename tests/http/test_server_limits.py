"""Limits on the request head and body: each answered with its status and `connection: close`,
promptly, without work that grows faster than the input."""

from __future__ import annotations

import asyncio
import time

from http_support import exchange, parse_responses, statuses

from apex_ai_proxy.http import ServerLimits

GET = b"GET /x HTTP/1.1\r\nhost: a\r\n"


async def test_150000_repeated_headers_get_431_promptly_and_other_clients_are_unaffected(
    echo_server,
):
    server = await echo_server()
    flood = GET + b"x-a: 1234567\r\n" * 150_000 + b"\r\n"  # ~2.3 MB
    started = time.monotonic()
    flooding = asyncio.create_task(exchange(server.port, flood, wait=10))
    other = await exchange(server.port, GET + b"connection: close\r\n\r\n", wait=5)
    assert statuses(other) == [200]
    answer = await flooding
    assert time.monotonic() - started < 3
    [reply] = parse_responses(answer)
    assert reply.status == 431
    assert reply.header("connection") == "close"
    assert server.calls and all(call.path == "/x" for call in server.calls)
    assert len(server.calls) == 1  # the flood never reached a handler


async def test_header_count_over_the_limit_gets_431(echo_server):
    server = await echo_server(limits=ServerLimits(max_header_count=10))
    lines = b"".join(b"x-%d: v\r\n" % i for i in range(11))
    [reply] = parse_responses(await exchange(server.port, GET + lines + b"\r\n"))
    assert reply.status == 431
    assert reply.json()["error"]["type"] == "invalid_request_error"
    assert server.calls == []


async def test_header_count_at_the_limit_is_served(echo_server):
    server = await echo_server(limits=ServerLimits(max_header_count=10))
    lines = b"".join(b"x-%d: v\r\n" % i for i in range(9))  # + host = 10
    reply = await exchange(server.port, GET + lines + b"connection: close\r\n\r\n")
    assert statuses(reply) == [431]  # host + 9 + connection = 11 lines: one over
    reply = await exchange(server.port, GET + lines[:-8] + b"connection: close\r\n\r\n")
    assert statuses(reply) == [200]


async def test_header_count_counts_repeats_and_new_names_together(echo_server):
    # new names are counted when the head ends, repeats as they come: the sum is what counts
    server = await echo_server(limits=ServerLimits(max_header_count=10))
    repeats = b"x-r: v\r\n" * 5
    names = b"".join(b"x-%d: v\r\n" % i for i in range(3))  # host + 3 + x-r + 4 repeats = 9
    reply = await exchange(server.port, GET + names + repeats + b"connection: close\r\n\r\n")
    assert statuses(reply) == [200]  # 10 fields
    reply = await exchange(
        server.port, GET + names + repeats + b"x-9: v\r\nconnection: close\r\n\r\n"
    )
    assert statuses(reply) == [431]  # 11 fields
    assert len(server.calls) == 1


async def test_chunked_trailers_count_towards_the_header_limit(echo_server):
    server = await echo_server(limits=ServerLimits(max_header_count=5))
    post = b"POST /x HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n"
    body = b"3\r\nabc\r\n0\r\n"
    ok = post + b"connection: close\r\n\r\n" + body + b"t-1: v\r\nt-2: v\r\n\r\n"
    assert statuses(await exchange(server.port, ok)) == [200]  # 3 + 2 trailers = 5
    over = post + b"connection: close\r\n\r\n" + body + b"t-1: v\r\nt-2: v\r\nt-3: v\r\n\r\n"
    assert statuses(await exchange(server.port, over)) == [431]


async def test_one_huge_header_value_gets_431_without_buffering_it_whole(echo_server):
    server = await echo_server()
    parts = [GET + b"x-big: "] + [b"a" * 65536] * 40  # 2.5 MB in one header, never finished
    answer = await exchange(server.port, parts, wait=5)
    assert statuses(answer) == [431]
    assert server.calls == []


async def test_header_bytes_over_the_limit_get_431(echo_server):
    server = await echo_server(limits=ServerLimits(max_header_bytes=1000))
    answer = await exchange(server.port, GET + b"x-big: " + b"a" * 1000 + b"\r\n\r\n")
    assert statuses(answer) == [431]


async def test_200kb_request_line_gets_414_promptly(echo_server):
    server = await echo_server()
    started = time.monotonic()
    answer = await exchange(
        server.port, b"GET /" + b"a" * 200_000 + b" HTTP/1.1\r\nhost: a\r\n\r\n", wait=5
    )
    [reply] = parse_responses(answer)
    assert reply.status == 414
    assert reply.header("connection") == "close"
    assert time.monotonic() - started < 2
    assert server.calls == []


async def test_target_at_the_limit_is_served(echo_server):
    server = await echo_server(limits=ServerLimits(max_target=100))
    target = b"/" + b"a" * 99
    ok = await exchange(
        server.port, b"GET " + target + b" HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n"
    )
    assert statuses(ok) == [200]
    long = await exchange(server.port, b"GET " + target + b"a HTTP/1.1\r\nhost: a\r\n\r\n")
    assert statuses(long) == [414]


async def test_declared_body_over_max_body_gets_413_and_close(echo_server):
    server = await echo_server(limits=ServerLimits(max_body=10), answer=_too_large_or_ok)
    request = b"POST /x HTTP/1.1\r\nhost: a\r\ncontent-length: 11\r\n\r\n" + b"a" * 11
    [reply] = parse_responses(await exchange(server.port, request))
    assert reply.status == 413
    assert reply.header("connection") == "close"


async def test_chunked_body_over_max_body_gets_413_and_close(echo_server):
    server = await echo_server(limits=ServerLimits(max_body=10), answer=_too_large_or_ok)
    request = b"POST /x HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\n\r\n6\r\naaaaaa\r\n6\r\naaaaaa\r\n0\r\n\r\n"
    [reply] = parse_responses(await exchange(server.port, request))
    assert reply.status == 413
    assert reply.header("connection") == "close"
    assert server.calls[0].body == b""  # what went over the limit was not kept


async def test_repeated_header_names_are_joined_in_order(echo_server):
    server = await echo_server()
    request = GET + b"x-a: 1\r\nX-A: 2\r\nx-b: z\r\nx-a: 3\r\nconnection: close\r\n\r\n"
    [reply] = parse_responses(await exchange(server.port, request))
    assert reply.json()["headers"]["x-a"] == "1, 2, 3"
    assert reply.json()["headers"]["x-b"] == "z"


def _too_large_or_ok(request):
    from apex_ai_proxy.http import json_response, protocol_error

    if request.too_large:
        return protocol_error(413, "too large")
    return json_response({"ok": True})


async def test_server_limits_come_from_the_config(gateway):
    gw = await gateway(
        {
            "providers": {"echo": {"kind": "echo"}},
            "models": {"echo": {"providers": [{"provider": "echo"}]}},
            "server": {"max_target_bytes": 64, "max_header_count": 5, "header_timeout_s": 0.3},
        }
    )
    port = int(gw.base_url.rsplit(":", 1)[1])
    long_target = b"GET /" + b"a" * 64 + b" HTTP/1.1\r\nhost: a\r\n\r\n"
    assert statuses(await exchange(port, long_target)) == [414]
    headers = b"".join(b"x-%d: v\r\n" % i for i in range(5))
    assert statuses(await exchange(port, GET + headers + b"\r\n")) == [431]
    started = time.monotonic()
    assert statuses(await exchange(port, GET)) == [408]
    assert time.monotonic() - started < 2


async def test_header_name_cache_stays_bounded_whatever_names_clients_send(echo_server):
    from apex_ai_proxy.http.server.request import HEADER_KEYS

    server = await echo_server()
    long_name = b"x-" + b"n" * 1000
    names = b"".join(b"x-flood-%d: v\r\n" % i for i in range(90))
    for _ in range(13):  # 1,170 distinct short names, one long one
        await exchange(server.port, GET + names + long_name + b": v\r\nconnection: close\r\n\r\n")
        names = names.replace(b"x-flood-", b"x-flood-a")
    assert len(HEADER_KEYS) <= 1024
    assert long_name not in HEADER_KEYS
