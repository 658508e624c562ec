"""Whole (non-stream) upstream bodies are capped while they are read (issue 10 #9)."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from client_support import RawUpstream, client, timeouts

from apex_ai_proxy.http import UpstreamBodyTooLarge

MIB = 1024 * 1024


async def _flood(head: bytes, total: int, chunked: bool) -> tuple[asyncio.Server, list[int]]:
    """A server that answers with `total` body bytes (64 KiB writes) and counts what it got out."""
    sent = [0]

    async def serve(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(head)
        piece = b"x" * 65536
        try:
            while sent[0] < total:
                writer.write(b"10000\r\n%s\r\n" % piece if chunked else piece)
                await writer.drain()
                sent[0] += len(piece)
        except ConnectionError:
            pass
        writer.close()

    return await asyncio.start_server(serve, "127.0.0.1", 0), sent


@pytest.mark.parametrize(
    "head,chunked",
    [
        (b"HTTP/1.1 200 OK\r\n\r\n", False),
        (b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n", True),
    ],
    ids=["close-delimited", "chunked"],
)
async def test_whole_body_read_stops_at_the_limit_and_closes(head, chunked):
    server, sent = await _flood(head, 200 * MIB, chunked)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
    http = client()
    response = await http.send("POST", url, {}, b"{}", timeouts(total=30))
    with pytest.raises(UpstreamBodyTooLarge, match="too large"):
        await response.read(limit=MIB)
    await asyncio.sleep(0.2)  # let the server see the close
    await http.close()
    server.close()
    assert sent[0] < 32 * MIB  # a cap plus socket buffers, never the 200 MiB


async def test_declared_length_over_the_limit_is_refused_before_reading_it():
    answer = b"HTTP/1.1 200 OK\r\ncontent-length: 5000000\r\n\r\n" + b"y" * 1000
    async with RawUpstream(lambda r: answer) as upstream:
        http = client()
        response = await http.send("POST", upstream.url, {}, b"{}", timeouts())
        with pytest.raises(UpstreamBodyTooLarge):
            await response.read(limit=4096)
        await http.close()


async def test_undeclared_body_that_came_whole_with_its_head_is_still_capped():
    # one read holds head, body and end: the body is complete before read() is called
    answer = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1388\r\n"
    answer += b"q" * 5000 + b"\r\n0\r\n\r\n"
    async with RawUpstream(lambda r: answer) as upstream:
        http = client()
        response = await http.send("POST", upstream.url, {}, b"{}", timeouts())
        await asyncio.sleep(0.05)
        with pytest.raises(UpstreamBodyTooLarge):
            await response.read(limit=4096)
        response = await http.send("POST", upstream.url, {}, b"{}", timeouts())
        await asyncio.sleep(0.05)
        assert await response.read(limit=5000) == b"q" * 5000
        await http.close()


async def test_body_within_the_limit_is_read_whole():
    answer = b"HTTP/1.1 200 OK\r\ncontent-length: 4096\r\n\r\n" + b"z" * 4096
    async with RawUpstream(lambda r: answer) as upstream:
        http = client()
        response = await http.send("POST", upstream.url, {}, b"{}", timeouts())
        assert len(await response.read(limit=4096)) == 4096
        await http.close()


def _completion(size: int) -> bytes:
    body = orjson.dumps(
        {
            "id": "c1",
            "object": "chat.completion",
            "model": "up",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "a" * size},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }
    )
    return b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (
        len(body),
        body,
    )


def _config(url: str, **provider) -> dict:
    return {
        "gateway_tokens": ["client-token"],
        "providers": {
            "up": {"kind": "openai", "base_url": url + "/v1", "api_keys": ["sk-up"], **provider},
            "other": {"kind": "openai", "base_url": url + "/v1", "api_keys": ["sk-o"], **provider},
        },
        "models": {"m": {"providers": [{"provider": "up"}, {"provider": "other"}]}},
        "retry": {"max_attempts": 2},
    }


async def test_gateway_answers_502_in_the_client_dialect_when_the_upstream_answer_is_too_large(
    gateway,
):
    async with RawUpstream(lambda r: _completion(100_000)) as upstream:
        gw = await gateway(_config(upstream.url, max_response_bytes=50_000))
        session = gw.http()
        chat = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        headers = {"authorization": "Bearer client-token"}
        async with session.post("/v1/chat/completions", json=chat, headers=headers) as answer:
            assert answer.status == 502
            error = (await answer.json())["error"]
        messages = {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
        async with session.post("/v1/messages", json=messages, headers=headers) as answer:
            assert answer.status == 502
            anthropic_error = await answer.json()
    assert "upstream answer too large" in error["message"]
    assert error["code"] == "upstream_response_too_large"
    assert anthropic_error["type"] == "error"
    assert "upstream answer too large" in anthropic_error["error"]["message"]
    assert len(upstream.requests) == 2  # one per request: no failover to "other"
