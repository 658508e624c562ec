"""Issue 10 #1 on the server side: a request target can never steer passthrough to a host or
port the allowlist refuses. CONNECT is answered 501 before any handler runs; absolute-form
targets reach handlers as their path and query only; userinfo is refused."""

from __future__ import annotations

import asyncio

from gateway_config import config
from http_support import exchange, statuses

TOKEN = "tok"


async def _refused_port() -> tuple[asyncio.Server, list[int]]:
    """A listener the allowlist does not name; counts the connections it gets."""
    accepted: list[int] = []

    def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    return server, accepted


async def _gateway(gateway, allowed_port: int):
    allow = {
        "host": "127.0.0.1",
        "allow_http": True,
        "allow_private": True,
        "ports": [allowed_port],
    }
    cfg = config({}, {}, gateway_tokens=[TOKEN], passthrough={"enabled": True, "allow": [allow]})
    gw = await gateway(cfg)
    return int(gw.base_url.rsplit(":", 1)[1])


def _passthrough_headers(allowed_port: int) -> bytes:
    return (
        b"host: gw\r\nx-apex-ai-proxy-provider: http://127.0.0.1:%d\r\n"
        b"x-apex-ai-proxy-token: %b\r\nconnection: close\r\n" % (allowed_port, TOKEN.encode())
    )


async def test_connect_with_userinfo_never_reaches_a_refused_port(gateway, fake_upstream):
    allowed = await fake_upstream("allowed")
    refused, accepted = await _refused_port()
    async with refused:
        port = await _gateway(gateway, allowed.port)
        bad_port = refused.sockets[0].getsockname()[1]
        request = b"CONNECT @127.0.0.1:%d HTTP/1.1\r\n" % bad_port
        request += _passthrough_headers(allowed.port) + b"\r\n"
        assert statuses(await exchange(port, request)) == [501]
        await asyncio.sleep(0.2)
    assert accepted == []
    assert allowed.requests == []


async def test_absolute_form_with_userinfo_never_reaches_a_refused_port(gateway, fake_upstream):
    allowed = await fake_upstream("allowed")
    refused, accepted = await _refused_port()
    async with refused:
        port = await _gateway(gateway, allowed.port)
        bad_port = refused.sockets[0].getsockname()[1]
        target = b"http://127.0.0.1:%d@127.0.0.1:%d/v1/models" % (allowed.port, bad_port)
        request = b"GET " + target + b" HTTP/1.1\r\n" + _passthrough_headers(allowed.port)
        assert statuses(await exchange(port, request + b"\r\n")) == [400]
        await asyncio.sleep(0.2)
    assert accepted == []


async def test_absolute_form_target_is_passed_through_as_its_path_only(gateway, fake_upstream):
    allowed = await fake_upstream("allowed")
    port = await _gateway(gateway, allowed.port)
    request = b"GET http://elsewhere.example/v1/models?x=1 HTTP/1.1\r\n"
    request += _passthrough_headers(allowed.port) + b"\r\n"
    await exchange(port, request)
    assert [(r.method, r.path) for r in allowed.requests] == [("GET", "/v1/models")]
