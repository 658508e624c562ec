"""Regression (h11 differential, 2026-12-02): `OPTIONS *` is answered from its head alone, so a
body behind it went unread: a broken chunked body that h11 refuses got a 200 from us."""

from __future__ import annotations

import pytest
from http_support import exchange, parse_responses


@pytest.mark.parametrize(
    "framing",
    [
        b"transfer-encoding: chunked\r\n\r\n-1\r\n\x00\r\n0\r\n\r\n",  # the example found
        b"transfer-encoding: chunked\r\n\r\n0\r\n\r\n",
        b"content-length: 3\r\n\r\nabc",
    ],
    ids=["broken-chunked", "empty-chunked", "content-length"],
)
async def test_options_star_with_a_body_is_400_not_200(echo_server, framing):
    server = await echo_server()
    request = b"OPTIONS * HTTP/1.1\r\nhost: h.example\r\nconnection: close\r\n" + framing
    [reply] = parse_responses(await exchange(server.port, request))
    assert reply.status == 400
    assert server.calls == []


async def test_options_star_with_content_length_zero_is_still_answered(echo_server):
    server = await echo_server()
    request = b"OPTIONS * HTTP/1.1\r\nhost: a\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    [reply] = parse_responses(await exchange(server.port, request))
    assert reply.status == 200
