"""The fake upstream itself: the official SDK must accept what it sends, failures must look real."""

from __future__ import annotations

import time

import aiohttp
import openai
import pytest

from fakes.openai_upstream import (
    BreakStream,
    Drop,
    Hang,
    Reply,
    bad_request,
    rate_limited,
    rate_limited_until,
    server_error,
)

MESSAGES = [{"role": "user", "content": "hello there"}]


def sdk(base_url: str, key: str = "sk-fake", timeout: float = 5.0) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=base_url, api_key=key, max_retries=0, timeout=timeout)


async def test_chat_completion_says_who_answered_and_records_the_key(fake_upstream):
    fake = await fake_upstream("alpha")
    async with sdk(fake.base_url, "sk-alpha-1") as client:
        resp = await client.chat.completions.create(model="m1", messages=MESSAGES)
    assert resp.choices[0].message.content == "alpha (m1) heard: hello there"
    assert resp.usage is not None and resp.usage.completion_tokens == 5
    assert "sk-alpha-1" not in resp.model_dump_json()
    [req] = fake.requests
    assert (req.method, req.path, req.key, req.model) == (
        "POST",
        "/v1/chat/completions",
        "sk-alpha-1",
        "m1",
    )


async def test_stream_ends_with_usage_chunk_and_done(fake_upstream):
    fake = await fake_upstream("alpha")
    async with sdk(fake.base_url) as client:
        stream = await client.chat.completions.create(
            model="m1", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "alpha (m1) heard: hello there"
    assert chunks[-1].choices == [] and chunks[-1].usage.total_tokens == 7


async def test_azure_paths_need_api_key_header_and_version(fake_upstream):
    fake = await fake_upstream("az")
    client = openai.AsyncAzureOpenAI(
        azure_endpoint=fake.root_url, api_key="az-key", api_version="2024-06-01", max_retries=0
    )
    async with client:
        resp = await client.chat.completions.create(model="dep-1", messages=MESSAGES)
        emb = await client.embeddings.create(model="dep-emb", input=["a", "bb"])
    assert resp.choices[0].message.content == "az (dep-1) heard: hello there"
    assert [len(e.embedding) for e in emb.data] == [3, 3]
    assert fake.requests[0].path == "/openai/deployments/dep-1/chat/completions"
    assert fake.requests[0].query == {"api-version": "2024-06-01"}
    assert fake.requests[0].headers["api-key"] == "az-key"
    async with aiohttp.ClientSession() as http:
        url = fake.root_url + "/openai/deployments/dep-1/chat/completions?api-version=1"
        async with http.post(
            url, json={"messages": MESSAGES}, headers={"Authorization": "Bearer x"}
        ) as r:
            assert r.status == 401


async def test_embeddings_and_models(fake_upstream):
    fake = await fake_upstream("alpha", models=["m1", "m2"])
    async with sdk(fake.base_url) as client:
        emb = await client.embeddings.create(model="e1", input="four letters")
        models = await client.models.list()
    assert emb.data[0].embedding == [12.0, 0.0, 0.5]
    assert [m.id for m in models.data] == ["m1", "m2"]


async def test_accepted_keys_reject_others(fake_upstream):
    fake = await fake_upstream("alpha", accepted_keys={"good"})
    async with sdk(fake.base_url, "bad") as client:
        with pytest.raises(openai.AuthenticationError):
            await client.chat.completions.create(model="m1", messages=MESSAGES)


async def test_scripted_failures_in_order_then_default(fake_upstream):
    fake = await fake_upstream("alpha")
    fake.queue(rate_limited(7), rate_limited_until(30), server_error(503), bad_request("no way"))
    async with sdk(fake.base_url) as client:
        with pytest.raises(openai.RateLimitError) as first:
            await client.chat.completions.create(model="m1", messages=MESSAGES)
        assert first.value.response.headers["retry-after"] == "7"
        with pytest.raises(openai.RateLimitError) as second:
            await client.chat.completions.create(model="m1", messages=MESSAGES)
        assert second.value.response.headers["retry-after"].endswith("GMT")
        with pytest.raises(openai.InternalServerError):
            await client.chat.completions.create(model="m1", messages=MESSAGES)
        with pytest.raises(openai.BadRequestError, match="no way"):
            await client.chat.completions.create(model="m1", messages=MESSAGES)
        resp = await client.chat.completions.create(model="m1", messages=MESSAGES)
    assert resp.choices[0].message.content.startswith("alpha")
    assert len(fake.requests) == 5


async def test_behaviour_function_decides_per_request(fake_upstream):
    fake = await fake_upstream("alpha")
    fake.behaviour = lambda req: server_error(502) if req.key == "sk-bad" else None
    async with sdk(fake.base_url, "sk-bad") as bad, sdk(fake.base_url, "sk-good") as good:
        with pytest.raises(openai.InternalServerError):
            await bad.chat.completions.create(model="m1", messages=MESSAGES)
        await good.chat.completions.create(model="m1", messages=MESSAGES)


async def test_drop_closes_without_answer(fake_upstream):
    fake = await fake_upstream("alpha")
    fake.queue(Drop())
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientError):
            async with http.post(
                fake.base_url + "/chat/completions",
                json={"model": "m", "messages": MESSAGES},
                headers={"Authorization": "Bearer k"},
            ) as resp:
                await resp.read()


async def test_hang_outlasts_client_timeout(fake_upstream):
    fake = await fake_upstream("alpha")
    fake.queue(Hang(10))
    started = time.monotonic()
    async with sdk(fake.base_url, timeout=0.3) as client:
        with pytest.raises(openai.APITimeoutError):
            await client.chat.completions.create(model="m1", messages=MESSAGES)
    assert time.monotonic() - started < 2


async def test_break_stream_sends_some_chunks_then_drops(fake_upstream):
    fake = await fake_upstream("alpha")
    fake.queue(BreakStream(after=2))
    received: list[str] = []
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientPayloadError):
            async with http.post(
                fake.base_url + "/chat/completions",
                json={"model": "m", "messages": MESSAGES, "stream": True},
                headers={"Authorization": "Bearer k"},
            ) as resp:
                async for line in resp.content:
                    received.append(line.decode())
    data = [line for line in received if line.startswith("data: ")]
    assert len(data) == 2  # role frame + 1 content frame
    assert not any("[DONE]" in line for line in received)


async def test_break_stream_with_clean_eof_truncates_silently(fake_upstream):
    fake = await fake_upstream("alpha")
    fake.queue(BreakStream(after=3, clean_eof=True))
    async with sdk(fake.base_url) as client:
        stream = await client.chat.completions.create(model="m1", messages=MESSAGES, stream=True)
        chunks = [c async for c in stream]
    assert len(chunks) == 3
    assert all(c.choices[0].finish_reason is None for c in chunks)


async def test_slow_tokens_are_spaced(fake_upstream):
    fake = await fake_upstream("alpha")
    fake.queue(Reply(content="a b c d", token_delay=0.05))
    started = time.monotonic()
    async with sdk(fake.base_url) as client:
        stream = await client.chat.completions.create(model="m1", messages=MESSAGES, stream=True)
        text = "".join([c.choices[0].delta.content or "" async for c in stream])
    assert text == "a b c d"
    assert time.monotonic() - started >= 0.2
