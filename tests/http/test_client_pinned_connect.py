"""What passthrough relies on: pinned addresses, its own headers, any method, no redirects."""

from __future__ import annotations

import pytest
from client_support import RawUpstream, client, ok, timeouts

from apex_ai_proxy.http import UpstreamConnectionError


async def test_connect_to_reaches_only_the_pinned_address_with_the_host_name_as_host():
    async with RawUpstream(lambda r: ok()) as upstream:
        http = client()
        url = f"http://api.example.test:{upstream.port}/v1/x?q=1"
        # 127.0.0.2 has no listener on that port: refused, then the next pinned address is tried
        response = await http.send(
            "POST", url, {}, b"{}", timeouts(), connect_to=["127.0.0.2", "127.0.0.1"]
        )
        assert await response.read() == b"hello"
        await http.close()
    request = upstream.requests[0]
    assert request.request_line == b"POST /v1/x?q=1 HTTP/1.1"
    assert request.header("host") == [f"api.example.test:{upstream.port}"]


async def test_connect_to_never_falls_back_to_resolving_the_host():
    http = client()
    with pytest.raises(UpstreamConnectionError, match="connection failed"):
        # localhost would resolve and might answer; the pinned (closed) address is all we try
        await http.send(
            "GET", "http://localhost:9/", {}, None, timeouts(), connect_to=["127.0.0.3"]
        )
    await http.close()


async def test_pooled_connection_is_reused_only_for_the_same_pinned_addresses():
    async with RawUpstream(lambda r: ok()) as upstream:
        http = client()
        url = f"http://pinned.test:{upstream.port}/"
        for pin in (["127.0.0.1"], ["127.0.0.1"], ["127.0.0.2", "127.0.0.1"]):
            response = await http.send("GET", url, {}, None, timeouts(), connect_to=pin)
            await response.read()
        await http.close()
    assert upstream.connections == 2


async def test_request_headers_as_pairs_keep_repeats_and_any_method():
    async with RawUpstream(lambda r: ok()) as upstream:
        http = client()
        headers = [("X-Tag", "a"), ("x-tag", "b"), ("Accept", "*/*")]
        response = await http.send("PROPFIND", upstream.url + "/d", headers, None, timeouts())
        await response.read()
        await http.close()
    request = upstream.requests[0]
    assert request.request_line.startswith(b"PROPFIND /d ")
    assert request.header("x-tag") == ["a", "b"]


async def test_redirects_are_returned_not_followed():
    answer = (
        b"HTTP/1.1 302 Found\r\nlocation: http://127.0.0.1:9/elsewhere\r\ncontent-length: 0\r\n\r\n"
    )
    async with RawUpstream(lambda r: answer) as upstream:
        http = client()
        response = await http.send("GET", upstream.url, {}, None, timeouts())
        await response.read()
        await http.close()
    assert (response.status, response.headers["location"]) == (302, "http://127.0.0.1:9/elsewhere")
    assert len(upstream.requests) == 1


@pytest.mark.parametrize(
    "header", [("x-a", "v\r\nx-injected: 1"), ("x-a", "v\nx"), ("x-a", "v\0"), ("x a", "v")]
)
async def test_header_with_line_break_or_nul_is_never_sent(header):
    async with RawUpstream(lambda r: ok()) as upstream:
        http = client()
        with pytest.raises(UpstreamConnectionError, match="forbidden character"):
            await http.send("GET", upstream.url, [header], None, timeouts())
        await http.close()
    assert upstream.requests == []


async def test_pinned_requests_with_client_chosen_paths_are_never_cached_per_url():
    async with RawUpstream(lambda r: ok()) as upstream:
        http = client()
        for i in range(20):
            url = f"http://pinned.test:{upstream.port}/{'p' * 1000}{i}"
            response = await http.send("GET", url, {}, None, timeouts(), connect_to=["127.0.0.1"])
            await response.read()
        routes = len(http._routes)
        await http.close()
    assert routes == 0
    assert upstream.connections == 1  # the connection is still kept alive and reused
