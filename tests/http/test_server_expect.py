"""`Expect: 100-continue`: `100 Continue` only once the request is authorised and under the size
limit; otherwise 401/413 at once, the body is never read and no handler runs."""

from __future__ import annotations

import asyncio

import orjson
from gateway_config import MESSAGES, config, model, openai_provider
from http_support import parse_responses, read_until_close

BODY = orjson.dumps({"model": "m", "messages": MESSAGES})


def _head(path: str, headers: str, length: int = len(BODY)) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nhost: a\r\ncontent-type: application/json\r\n"
        f"expect: 100-continue\r\ncontent-length: {length}\r\n{headers}\r\n"
    ).encode()


async def _expect(port: int, head: bytes) -> tuple[bytes, bool]:
    """Send the head, wait for the server's first word; send the body only after a 100.
    Returns what the server said and whether the body was sent."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head)
        await writer.drain()
        first = await asyncio.wait_for(reader.read(65536), 5)
        if not first.startswith(b"HTTP/1.1 100 "):
            return first + await read_until_close(reader, 2), False
        writer.write(BODY)
        await writer.drain()
        return first + await read_until_close(reader, 5), True
    finally:
        writer.close()


async def _gateway(gateway, fake_upstream, **top):
    up = await fake_upstream("up")
    cfg = config({"oa": openai_provider(up)}, {"m": model("oa")}, gateway_tokens=["tok"], **top)
    gw = await gateway(cfg)
    return gw, int(gw.base_url.rsplit(":", 1)[1]), up


async def test_expect_100_continue_without_a_token_gets_401_not_100(gateway, fake_upstream):
    gw, port, up = await _gateway(gateway, fake_upstream)
    said, sent = await _expect(port, _head("/v1/chat/completions", ""))
    assert not sent
    [reply] = parse_responses(said)
    assert reply.status == 401
    assert reply.header("connection") == "close"
    assert reply.json()["error"]["type"] == "authentication_error"
    assert up.requests == []


async def test_expect_100_continue_with_a_wrong_token_on_v1_messages_gets_anthropic_401(
    gateway, fake_upstream
):
    gw, port, up = await _gateway(gateway, fake_upstream)
    said, sent = await _expect(port, _head("/v1/messages", "x-api-key: nope\r\n"))
    assert not sent
    [reply] = parse_responses(said)
    assert reply.status == 401
    assert reply.json()["type"] == "error"


async def test_expect_100_continue_over_the_size_limit_gets_413_not_100(gateway, fake_upstream):
    gw, port, up = await _gateway(gateway, fake_upstream, server={"max_body_bytes": 1000})
    head = _head("/v1/chat/completions", "authorization: Bearer tok\r\n", length=5000)
    said, sent = await _expect(port, head)
    assert not sent
    [reply] = parse_responses(said)
    assert reply.status == 413
    assert reply.header("connection") == "close"


async def test_expect_100_continue_with_a_token_gets_100_then_the_answer(gateway, fake_upstream):
    gw, port, up = await _gateway(gateway, fake_upstream)
    head = _head("/v1/chat/completions", "authorization: Bearer tok\r\nconnection: close\r\n")
    said, sent = await _expect(port, head)
    assert sent
    assert [r.status for r in parse_responses(said)] == [100, 200]
    assert len(up.requests) == 1


async def test_expect_100_continue_on_passthrough_checks_the_passthrough_token(
    gateway, fake_upstream
):
    gw, port, up = await _gateway(
        gateway, fake_upstream, passthrough={"enabled": True, "allow": [_allow_loopback()]}
    )
    headers = f"authorization: Bearer tok\r\nx-apex-ai-proxy-provider: {up.base_url}\r\n"
    said, sent = await _expect(port, _head("/v1/chat/completions", headers))
    assert not sent  # the gateway token belongs in X-APEX-AI-PROXY-TOKEN for passthrough
    assert parse_responses(said)[0].status == 401
    assert up.requests == []


def _allow_loopback() -> dict:
    return {"host": "127.0.0.1", "allow_http": True, "allow_private": True}
