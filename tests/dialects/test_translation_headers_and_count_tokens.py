"""Headers an Anthropic upstream needs, credentials, and /v1/messages/count_tokens.

The provider's key reaches the upstream in that upstream's own header; the client's credential
never does. anthropic-beta from an Anthropic client reaches an Anthropic upstream.
"""

from __future__ import annotations

import orjson
import pytest
from translation_support import (
    CLIENT_TOKEN,
    IMAGE_URL,
    MODEL,
    PROVIDER_KEY,
    WEATHER_TOOL_ANTHROPIC,
    anthropic_client,
    one_model,
)

HELLO = [{"role": "user", "content": "hello there"}]
BETA = "prompt-caching-2024-07-31,token-efficient-tools-2025-02-19"


def assert_no_client_credential(headers: dict[str, str]) -> None:
    leaked = [name for name, value in headers.items() if CLIENT_TOKEN in value]
    assert leaked == [], f"client token forwarded in {leaked}"


@pytest.mark.parametrize("stream", [False, True])
async def test_anthropic_beta_and_version_reach_anthropic_upstream(stream, gateway, anthropic_fake):
    gw = await gateway(one_model("anthropic", anthropic_fake))
    # Pin the version the client sends (SDK helpers may send a newer one): it is relayed as is.
    client = anthropic_client(
        gw, default_headers={"anthropic-beta": BETA, "anthropic-version": "2023-06-01"}
    )

    if stream:
        async with client.messages.stream(model=MODEL, max_tokens=64, messages=HELLO) as s:
            await s.get_final_message()
    else:
        await client.messages.create(model=MODEL, max_tokens=64, messages=HELLO)

    headers = {k.lower(): v for k, v in anthropic_fake.requests[0].headers.items()}
    assert headers["anthropic-beta"] == BETA
    assert headers["anthropic-version"] == "2023-06-01"
    assert headers["x-api-key"] == PROVIDER_KEY
    assert "authorization" not in headers
    assert_no_client_credential(headers)


async def test_configured_anthropic_version_reaches_anthropic_upstream(gateway, anthropic_fake):
    gw = await gateway(one_model("anthropic", anthropic_fake, api_version="2023-01-01"))
    client = gw.openai(CLIENT_TOKEN)  # a translated request: the provider's version applies

    await client.chat.completions.create(model=MODEL, messages=HELLO)

    headers = {k.lower(): v for k, v in anthropic_fake.requests[0].headers.items()}
    assert headers["anthropic-version"] == "2023-01-01"
    assert "anthropic-beta" not in headers


async def test_client_anthropic_version_reaches_same_dialect_upstream(gateway, anthropic_fake):
    gw = await gateway(one_model("anthropic", anthropic_fake))
    client = anthropic_client(gw, default_headers={"anthropic-version": "2023-01-01"})

    await client.messages.create(model=MODEL, max_tokens=64, messages=HELLO)

    headers = {k.lower(): v for k, v in anthropic_fake.requests[0].headers.items()}
    assert headers["anthropic-version"] == "2023-01-01"


async def test_client_credential_never_reaches_openai_upstream(gateway, openai_fake):
    gw = await gateway(one_model("openai", openai_fake))
    client = anthropic_client(gw, default_headers={"anthropic-beta": BETA})

    await client.messages.create(model=MODEL, max_tokens=64, messages=HELLO)

    headers = openai_fake.requests[0].headers
    assert headers["authorization"] == f"Bearer {PROVIDER_KEY}"
    assert "x-api-key" not in headers
    assert "anthropic-beta" not in headers  # means nothing to another dialect
    assert_no_client_credential(headers)


async def test_client_credential_never_reaches_gemini_upstream(gateway, gemini_fake):
    client = anthropic_client(await gateway(one_model("gemini", gemini_fake)))

    await client.messages.create(model=MODEL, max_tokens=64, messages=HELLO)

    headers = {k.lower(): v for k, v in gemini_fake.requests[0].headers.items()}
    assert headers["x-goog-api-key"] == PROVIDER_KEY
    assert "x-api-key" not in headers and "authorization" not in headers
    assert_no_client_credential(headers)


# --- count_tokens -------------------------------------------------------------------------


async def test_count_tokens_exact_from_anthropic_upstream(gateway, anthropic_fake):
    client = anthropic_client(
        await gateway(one_model("anthropic", anthropic_fake)),
        default_headers={"anthropic-beta": BETA},
    )
    messages = [{"role": "user", "content": "count the tokens of this sentence, please"}]

    raw = await client.messages.with_raw_response.count_tokens(
        model=MODEL, messages=messages, tools=[WEATHER_TOOL_ANTHROPIC]
    )
    counted = await raw.parse()

    # The fake counts len(json(messages)) // 4: an answer the estimate would not give.
    assert counted.input_tokens == len(orjson.dumps(messages)) // 4
    assert raw.headers["x-apex-token-count"] == "exact"
    (received,) = anthropic_fake.requests
    assert received.path == "/v1/messages/count_tokens"
    assert received.json["model"] == "up-model"
    assert received.json["tools"] == [WEATHER_TOOL_ANTHROPIC]
    headers = {k.lower(): v for k, v in received.headers.items()}
    assert headers["x-api-key"] == PROVIDER_KEY
    assert headers["anthropic-beta"] == BETA
    assert_no_client_credential(headers)


async def test_count_tokens_estimate_without_anthropic_upstream(gateway, openai_fake):
    client = anthropic_client(await gateway(one_model("openai", openai_fake)))

    raw = await client.messages.with_raw_response.count_tokens(
        model=MODEL, system="Be brief.", messages=HELLO
    )
    with_image = await client.messages.count_tokens(
        model=MODEL,
        system="Be brief.",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "hello there"},
                    {"type": "image", "source": {"type": "url", "url": IMAGE_URL}},
                ],
            }
        ],
    )

    # Documented rule: ceil(chars / 4) + 4 per message + 1600 per image.
    # "Be brief." + "hello there" = 20 characters -> 5, one message -> +4.
    assert (await raw.parse()).input_tokens == 9
    assert raw.headers["x-apex-token-count"] == "estimate"
    assert with_image.input_tokens == 9 + 1600
    assert openai_fake.requests == []


async def test_count_tokens_falls_back_to_estimate_when_upstream_fails(gateway, anthropic_fake):
    gw = await gateway(one_model("anthropic", anthropic_fake))
    await anthropic_fake.stop()  # connection refused: the count cannot be exact
    client = anthropic_client(gw)

    raw = await client.messages.with_raw_response.count_tokens(
        model=MODEL, system="Be brief.", messages=HELLO
    )

    assert raw.headers["x-apex-token-count"] == "estimate"
    assert (await raw.parse()).input_tokens == 9
