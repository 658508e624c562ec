"""Gateway tokens and malformed requests: honest statuses in OpenAI error shape, and nothing
reaches an upstream."""

from __future__ import annotations

import asyncio
import json

import openai
import pytest
from gateway_config import MESSAGES, chat, config, model, openai_provider

TOKENS = ["tok-alpha-1", "tok-beta-2"]


async def authed(gateway, fake_upstream, **top):
    up = await fake_upstream("up")
    gw = await gateway(
        config(
            {"oa": openai_provider(up)},
            {"gpt-4o": model("oa"), "emb": model({"provider": "oa", "model": "e"})},
            gateway_tokens=TOKENS,
            **top,
        )
    )
    return up, gw


def assert_openai_error(body: dict, error_type: str | None = None) -> dict:
    error = body["error"]
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["type"], str) and error["type"]
    assert "code" in error
    if error_type is not None:
        assert error["type"] == error_type
    return error


async def test_bearer_and_x_api_key_accepted(gateway, fake_upstream):
    up, gw = await authed(gateway, fake_upstream)
    completion, _ = await chat(gw.openai(TOKENS[0]), "gpt-4o")
    assert completion.choices[0].message.content.startswith("up (gpt-4o)")
    async with gw.http().post(
        "/v1/chat/completions",
        json={"model": "gpt-4o", "messages": MESSAGES},
        headers={"x-api-key": TOKENS[1]},
    ) as resp:
        assert resp.status == 200
    async with gw.http().get(
        "/v1/models", headers={"Authorization": f"Bearer {TOKENS[1]}"}
    ) as resp:
        assert resp.status == 200
    assert len(up.requests) == 2


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"x-api-key": "wrong"},
        {"Authorization": "Basic dG9rLWFscGhhLTE="},
        {"Authorization": "Bearer "},
    ],
    ids=["missing", "wrong-bearer", "wrong-x-api-key", "basic-scheme", "empty-bearer"],
)
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/embeddings", "/v1/models"])
async def test_missing_or_wrong_token_is_401(gateway, fake_upstream, headers, path):
    up, gw = await authed(gateway, fake_upstream)
    body = {"model": "gpt-4o", "messages": MESSAGES, "input": "x"}
    method = "GET" if path == "/v1/models" else "POST"
    async with gw.http().request(
        method, path, json=body if method == "POST" else None, headers=headers
    ) as resp:
        assert resp.status == 401
        assert resp.headers["x-request-id"]
        error = assert_openai_error(await resp.json())
    for token in TOKENS:
        assert token not in error["message"]
    assert up.requests == []


async def test_sdk_sees_authentication_error(gateway, fake_upstream):
    up, gw = await authed(gateway, fake_upstream)
    with pytest.raises(openai.AuthenticationError) as err:
        await chat(gw.openai("not-a-token"), "gpt-4o")
    assert err.value.status_code == 401
    assert up.requests == []


async def test_health_endpoints_need_no_token(gateway, fake_upstream):
    _, gw = await authed(gateway, fake_upstream)
    for path in ("/healthz", "/readyz"):
        async with gw.http().get(path) as resp:
            assert resp.status == 200, path


async def post_raw(gw, path: str, data: bytes, content_type: str = "application/json"):
    headers = {"Authorization": f"Bearer {TOKENS[0]}", "Content-Type": content_type}
    async with gw.http().post(path, data=data, headers=headers) as resp:
        return resp.status, await resp.json(content_type=None), resp.headers


@pytest.mark.parametrize(
    ("data", "param"),
    [
        (b'{"model": "gpt-4o", "messages": [', None),
        (b"not json at all", None),
        (b'["model", "gpt-4o"]', None),
        (b'{"messages": [{"role": "user", "content": "x"}]}', "model"),
        (b'{"model": 42, "messages": [{"role": "user", "content": "x"}]}', "model"),
        (b'{"model": null, "messages": [{"role": "user", "content": "x"}]}', "model"),
        (b'{"model": "gpt-4o"}', "messages"),
    ],
    ids=[
        "truncated-json",
        "not-json",
        "json-array",
        "missing-model",
        "model-number",
        "model-null",
        "missing-messages",
    ],
)
async def test_bad_chat_body_is_400(gateway, fake_upstream, data, param):
    up, gw = await authed(gateway, fake_upstream)
    status, body, _ = await post_raw(gw, "/v1/chat/completions", data)
    assert status == 400
    error = assert_openai_error(body, "invalid_request_error")
    if param is not None:
        assert param in error["message"]
    assert up.requests == []


async def test_unknown_model_is_404_listing_known_ones(gateway, fake_upstream):
    up, gw = await authed(gateway, fake_upstream)
    with pytest.raises(openai.NotFoundError) as err:
        await chat(gw.openai(TOKENS[0]), "gpt-5-imaginary")
    message = err.value.message
    assert "gpt-5-imaginary" in message
    assert "gpt-4o" in message and "emb" in message
    assert up.requests == []


async def test_body_over_limit_is_413(gateway, fake_upstream):
    up, gw = await authed(gateway, fake_upstream, server={"max_body_bytes": 2048})
    big = {"model": "gpt-4o", "messages": [{"role": "user", "content": "x" * 4096}]}
    with pytest.raises(openai.APIStatusError) as err:
        await chat(gw.openai(TOKENS[0]), "gpt-4o", messages=big["messages"])
    assert err.value.status_code == 413
    assert_openai_error(err.value.response.json())
    # Just under the limit still works.
    completion, _ = await chat(
        gw.openai(TOKENS[0]), "gpt-4o", messages=[{"role": "user", "content": "y" * 1500}]
    )
    assert completion.choices[0].message.content.startswith("up (gpt-4o)")
    assert len(up.requests) == 1


async def test_body_over_limit_without_content_length_is_413(gateway, fake_upstream):
    up, gw = await authed(gateway, fake_upstream, server={"max_body_bytes": 2048})

    async def chunked():
        yield b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "'
        for _ in range(8):
            yield b"z" * 1024
        yield b'"}]}'

    headers = {"Authorization": f"Bearer {TOKENS[0]}", "Content-Type": "application/json"}
    async with gw.http().post("/v1/chat/completions", data=chunked(), headers=headers) as resp:
        assert resp.status == 413
        assert_openai_error(await resp.json())
    assert up.requests == []


async def test_unknown_route_is_404(gateway, fake_upstream):
    up, gw = await authed(gateway, fake_upstream)
    status, body, _ = await post_raw(gw, "/v1/chat/completion", b"{}")
    assert status == 404
    assert_openai_error(body)
    async with gw.http().get("/nope") as resp:
        assert resp.status == 404
        assert_openai_error(await resp.json())
    assert up.requests == []


async def test_wrong_method_is_405(gateway, fake_upstream):
    up, gw = await authed(gateway, fake_upstream)
    headers = {"Authorization": f"Bearer {TOKENS[0]}"}
    for method, path in (
        ("GET", "/v1/chat/completions"),
        ("PUT", "/v1/embeddings"),
        ("POST", "/v1/models"),
    ):
        async with gw.http().request(method, path, headers=headers) as resp:
            assert resp.status == 405, (method, path)
            assert_openai_error(await resp.json())
    assert up.requests == []


async def test_embeddings_without_input_is_400(gateway, fake_upstream):
    up, gw = await authed(gateway, fake_upstream)
    status, body, _ = await post_raw(gw, "/v1/embeddings", b'{"model": "emb"}')
    assert status == 400
    assert "input" in assert_openai_error(body)["message"]
    assert up.requests == []


async def test_malformed_http_is_400_and_the_connection_closes(gateway, fake_upstream):
    """Bytes that are not HTTP get a 400 in OpenAI's shape, never a crash or a hang."""
    a = await fake_upstream("a")
    gw = await gateway(config({"a": openai_provider(a, "k")}, {"m": model("a")}))
    host, port = gw.base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: nope\r\n\r\n")
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 5)  # read() returns once the server closes
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400")
    assert json.loads(body)["error"]["type"] == "invalid_request_error"
    assert a.requests == []
