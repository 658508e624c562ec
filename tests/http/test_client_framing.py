"""Response framings of RFC 9112 §6.3, over real sockets, one test per shape."""

from __future__ import annotations

import asyncio

import pytest
from client_support import Close, RawUpstream, client, ok, timeouts

from apex_ai_proxy.http import UpstreamConnectionError


async def _get(upstream: RawUpstream, method: str = "POST", body: bytes | None = b"{}"):
    http = client()
    try:
        response = await http.send(method, upstream.url + "/x", {}, body, timeouts())
        return response, await response.read()
    finally:
        await http.close()


async def test_content_length_body_is_read_exactly():
    async with RawUpstream(lambda r: ok(b"exactly this")) as upstream:
        response, body = await _get(upstream)
    assert (response.status, body) == (200, b"exactly this")


async def test_chunked_body_with_extensions_and_trailers_is_read():
    answer = (
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
        b"5;name=value\r\nhello\r\n6;x\r\n world\r\n0\r\nx-trailer: t\r\n\r\n"
    )
    async with RawUpstream(lambda r: answer) as upstream:
        response, body = await _get(upstream)
    assert body == b"hello world"
    assert "x-trailer" not in response.headers  # trailers never become headers


async def test_close_delimited_body_ends_normally_at_close():
    answer = Close(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\r\ndata: 1\n\ndata: 2\n\n"
    )
    async with RawUpstream(lambda r: answer) as upstream:
        response, body = await _get(upstream)
    assert (response.status, body) == (200, b"data: 1\n\ndata: 2\n\n")


async def test_close_delimited_stream_chunks_then_end():
    answer = Close(b"HTTP/1.1 200 OK\r\n\r\nfirst")
    async with RawUpstream(lambda r: answer) as upstream:
        http = client()
        response = await http.send("POST", upstream.url, {}, b"", timeouts())
        chunks = []
        while (chunk := await response.next_chunk()) is not None:
            chunks.append(chunk)
        await http.close()
    assert b"".join(chunks) == b"first"


async def test_close_inside_declared_length_is_a_break():
    answer = Close(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly part")
    async with RawUpstream(lambda r: answer) as upstream:
        with pytest.raises(UpstreamConnectionError, match="mid-response"):
            await _get(upstream)


async def test_close_inside_a_chunk_is_a_break():
    answer = Close(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\na\r\nhal")
    async with RawUpstream(lambda r: answer) as upstream:
        with pytest.raises(UpstreamConnectionError, match="mid-response"):
            await _get(upstream)


async def test_close_before_the_last_chunk_is_a_break():
    answer = Close(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n")
    async with RawUpstream(lambda r: answer) as upstream:
        with pytest.raises(UpstreamConnectionError, match="mid-response"):
            await _get(upstream)


@pytest.mark.parametrize("interim", [b"100 Continue", b"103 Early Hints"])
async def test_interim_1xx_responses_are_skipped(interim):
    answer = b"HTTP/1.1 %s\r\nlink: </a.css>; rel=preload\r\n\r\n" % interim + ok(b"final")
    async with RawUpstream(lambda r: answer) as upstream:
        response, body = await _get(upstream)
    assert (response.status, body) == (200, b"final")
    assert "link" not in response.headers


async def test_head_response_has_no_body_whatever_content_length_says():
    answer = b"HTTP/1.1 200 OK\r\ncontent-length: 1234\r\n\r\n"
    async with RawUpstream(lambda r: answer) as upstream:
        response, body = await asyncio.wait_for(_get(upstream, "HEAD", None), 3)
    assert (response.status, body) == (200, b"")
    assert response.headers["content-length"] == "1234"


@pytest.mark.parametrize("status", [204, 304])
async def test_204_and_304_have_no_body_whatever_the_headers_say(status):
    answer = b"HTTP/1.1 %d X\r\ncontent-length: 10\r\n\r\n" % status
    seen = []

    def respond(request):
        seen.append(request)
        return answer if len(seen) == 1 else ok(b"second")

    async with RawUpstream(respond) as upstream:
        http = client()
        first = await http.send("GET", upstream.url, {}, None, timeouts())
        assert (first.status, await asyncio.wait_for(first.read(), 3)) == (status, b"")
        second = await http.send("GET", upstream.url, {}, None, timeouts())
        assert await second.read() == b"second"
        await http.close()
    assert upstream.connections == 1  # the empty body left the connection reusable


async def test_transfer_encoding_other_than_chunked_is_refused():
    answer = Close(b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\nxxxx")
    async with RawUpstream(lambda r: answer) as upstream:
        with pytest.raises(UpstreamConnectionError, match="transfer-encoding"):
            await _get(upstream)


async def test_raw_headers_keep_repeats_and_reason():
    answer = (
        b"HTTP/1.1 201 Made It\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\ncontent-length: 0\r\n\r\n"
    )
    async with RawUpstream(lambda r: answer) as upstream:
        response, _ = await _get(upstream)
    assert (response.status, response.reason) == (201, "Made It")
    assert response.raw_headers[:2] == [("Set-Cookie", "a=1"), ("set-cookie", "b=2")]
    assert response.headers["set-cookie"] == "a=1, b=2"
