"""Errors reach the client in its own dialect, whatever dialect the upstream spoke.

A client on /v1/messages always gets `{"type": "error", "error": {"type", "message"}}` with an
honest status, so the Anthropic SDK raises the matching exception class; a client on
/v1/chat/completions gets OpenAI's `{"error": {...}}`.
"""

from __future__ import annotations

import anthropic
import openai
import pytest
from fakes.openai_upstream import bad_request, rate_limited
from translation_support import CLIENT_TOKEN, MODEL, anthropic_client, one_model

HELLO = [{"role": "user", "content": "hello there"}]
GEMINI_429 = {"error": {"code": 429, "message": "Quota exceeded", "status": "RESOURCE_EXHAUSTED"}}
ANTHROPIC_429 = {"type": "error", "error": {"type": "rate_limit_error", "message": "Slow down"}}


def anthropic_shape(body) -> tuple[str, str]:
    assert body["type"] == "error"
    assert set(body["error"]) >= {"type", "message"}
    return body["error"]["type"], body["error"]["message"]


async def _gateway_429(kind, gateway, openai_fake, anthropic_fake, gemini_fake):
    if kind == "openai":
        openai_fake.queue(rate_limited(retry_after=2))
        return await gateway(one_model("openai", openai_fake))
    if kind == "anthropic":
        anthropic_fake.push_error(429, ANTHROPIC_429, headers={"retry-after": "2"})
        return await gateway(one_model("anthropic", anthropic_fake))
    gemini_fake.push_error(429, GEMINI_429, headers={"retry-after": "2"})
    return await gateway(one_model("gemini", gemini_fake))


@pytest.mark.parametrize("kind", ["openai", "anthropic", "gemini"])
async def test_upstream_429_is_anthropic_rate_limit_error(
    kind, gateway, openai_fake, anthropic_fake, gemini_fake
):
    gw = await _gateway_429(kind, gateway, openai_fake, anthropic_fake, gemini_fake)
    client = anthropic_client(gw)

    with pytest.raises(anthropic.RateLimitError) as caught:
        await client.messages.create(model=MODEL, max_tokens=64, messages=HELLO)

    assert caught.value.status_code == 429
    assert anthropic_shape(caught.value.body)[0] == "rate_limit_error"
    assert caught.value.response.headers.get("retry-after") is not None


async def test_upstream_429_on_stream_is_anthropic_rate_limit_error(gateway, openai_fake):
    openai_fake.queue(rate_limited(retry_after=2))
    client = anthropic_client(await gateway(one_model("openai", openai_fake)))

    with pytest.raises(anthropic.RateLimitError) as caught:
        async with client.messages.stream(model=MODEL, max_tokens=64, messages=HELLO) as stream:
            await stream.get_final_message()

    assert anthropic_shape(caught.value.body)[0] == "rate_limit_error"


async def test_upstream_529_is_anthropic_overloaded_error(gateway, anthropic_fake):
    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    anthropic_fake.push_error(529, overloaded)
    client = anthropic_client(await gateway(one_model("anthropic", anthropic_fake)))

    with pytest.raises(anthropic.OverloadedError) as caught:
        await client.messages.create(model=MODEL, max_tokens=64, messages=HELLO)

    assert caught.value.status_code == 529
    error_type, message = anthropic_shape(caught.value.body)
    assert error_type == "overloaded_error"
    assert "529" in message and "Overloaded" in message


async def test_openai_upstream_400_is_anthropic_invalid_request_error(gateway, openai_fake):
    openai_fake.queue(bad_request("Invalid value for 'temperature': must be <= 2"))
    client = anthropic_client(await gateway(one_model("openai", openai_fake)))

    with pytest.raises(anthropic.BadRequestError) as caught:
        await client.messages.create(model=MODEL, max_tokens=64, messages=HELLO)

    error_type, message = anthropic_shape(caught.value.body)
    assert error_type == "invalid_request_error"
    assert "Invalid value for 'temperature': must be <= 2" in message
    assert len(openai_fake.requests) == 1  # the client's mistake: not retried


async def test_openai_upstream_400_on_stream_is_anthropic_invalid_request_error(
    gateway, openai_fake
):
    openai_fake.queue(bad_request("Unsupported parameter: 'top_k'"))
    client = anthropic_client(await gateway(one_model("openai", openai_fake)))

    with pytest.raises(anthropic.BadRequestError) as caught:
        async with client.messages.stream(model=MODEL, max_tokens=64, messages=HELLO) as stream:
            await stream.get_final_message()

    assert anthropic_shape(caught.value.body) == (
        "invalid_request_error",
        caught.value.body["error"]["message"],
    )
    assert "Unsupported parameter: 'top_k'" in caught.value.body["error"]["message"]


async def test_gemini_upstream_400_is_anthropic_invalid_request_error(gateway, gemini_fake):
    body = {"error": {"code": 400, "message": "Invalid JSON payload", "status": "INVALID_ARGUMENT"}}
    gemini_fake.push_error(400, body)
    client = anthropic_client(await gateway(one_model("gemini", gemini_fake)))

    with pytest.raises(anthropic.BadRequestError) as caught:
        await client.messages.create(model=MODEL, max_tokens=64, messages=HELLO)

    error_type, message = anthropic_shape(caught.value.body)
    assert error_type == "invalid_request_error"
    assert "Invalid JSON payload" in message


async def test_anthropic_upstream_400_is_openai_error_shape(gateway, anthropic_fake):
    body = {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": "max_tokens: too large"},
    }
    anthropic_fake.push_error(400, body)
    client = (await gateway(one_model("anthropic", anthropic_fake))).openai(CLIENT_TOKEN)

    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(model=MODEL, messages=HELLO)

    assert caught.value.status_code == 400
    assert caught.value.type == "invalid_request_error"
    assert "max_tokens: too large" in caught.value.message


async def test_unknown_model_is_anthropic_not_found_error(gateway, openai_fake):
    client = anthropic_client(await gateway(one_model("openai", openai_fake)))

    with pytest.raises(anthropic.NotFoundError) as caught:
        await client.messages.create(model="no-such-model", max_tokens=64, messages=HELLO)

    error_type, message = anthropic_shape(caught.value.body)
    assert error_type == "not_found_error"
    assert "no-such-model" in message and MODEL in message
    assert openai_fake.requests == []


async def test_bad_json_is_anthropic_invalid_request_error(gateway, openai_fake):
    gw = await gateway(one_model("openai", openai_fake))
    headers = {"x-api-key": CLIENT_TOKEN, "content-type": "application/json"}

    async with gw.http().post("/v1/messages", data=b'{"model": "x",', headers=headers) as resp:
        status, body = resp.status, await resp.json()

    assert status == 400
    error_type, message = anthropic_shape(body)
    assert error_type == "invalid_request_error"
    assert "JSON" in message


async def test_wrong_gateway_token_is_anthropic_authentication_error(gateway, openai_fake):
    client = anthropic_client(await gateway(one_model("openai", openai_fake)), token="wrong")

    with pytest.raises(anthropic.AuthenticationError) as caught:
        await client.messages.create(model=MODEL, max_tokens=64, messages=HELLO)

    assert anthropic_shape(caught.value.body)[0] == "authentication_error"
    assert openai_fake.requests == []
