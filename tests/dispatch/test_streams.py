"""Streams that fail after the first byte: the client gets an error it can parse, never a hang
or a silently shortened answer, and no second upstream is asked (the answer already started)."""

from __future__ import annotations

import asyncio

import openai
import orjson
import pytest
from fakes.openai_upstream import BreakStream, Reply, split_tokens
from gateway_config import MESSAGES, config, model, openai_provider

from apex_ai_proxy.telemetry.query import recent_records

FULL_TEXT = "a (m) heard: ping from the test"


async def read_until_error(client) -> tuple[str, BaseException | None]:
    stream = await client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    text = ""
    try:
        async for chunk in stream:
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
    except Exception as exc:  # noqa: BLE001 - the test inspects whatever ended the stream
        return text, exc
    return text, None


async def one_provider(gateway, fake_upstream, **settings):
    a = await fake_upstream("a")
    gw = await gateway(config({"a": openai_provider(a, "k1", "k2", **settings)}, {"m": model("a")}))
    return a, gw


def assert_sdk_error_event(exc: BaseException | None) -> None:
    """The SDK raises a plain APIError for an `{"error": …}` data frame; a cut connection would
    surface as a transport error instead."""
    assert exc is not None, "the stream ended as if it were complete"
    assert isinstance(exc, openai.APIError), repr(exc)
    assert not isinstance(exc, openai.APIConnectionError), repr(exc)
    assert exc.message


async def test_stream_broken_midway_ends_with_an_error_event(gateway, fake_upstream):
    a, gw = await one_provider(gateway, fake_upstream)
    a.queue(BreakStream(after=3))  # role frame + two words, then the connection drops
    text, exc = await asyncio.wait_for(read_until_error(gw.openai()), 5)
    assert text == "".join(split_tokens(FULL_TEXT)[:2])
    assert_sdk_error_event(exc)
    assert len(a.requests) == 1  # bytes already reached the client: no failover


async def test_stream_ended_without_done_is_not_silently_truncated(gateway, fake_upstream):
    a, gw = await one_provider(gateway, fake_upstream)
    a.queue(BreakStream(after=3, clean_eof=True))
    text, exc = await asyncio.wait_for(read_until_error(gw.openai()), 5)
    assert text == "".join(split_tokens(FULL_TEXT)[:2])
    assert_sdk_error_event(exc)
    assert len(a.requests) == 1


async def test_stream_that_stalls_midway_ends_with_an_error_event(gateway, fake_upstream):
    a, gw = await one_provider(gateway, fake_upstream, timeout=0.5)
    a.queue(Reply(token_delay=30))  # first frame at once, then silence
    text, exc = await asyncio.wait_for(read_until_error(gw.openai()), 5)
    assert text == ""
    assert_sdk_error_event(exc)
    assert len(a.requests) == 1


async def test_complete_stream_relays_every_chunk(gateway, fake_upstream):
    a, gw = await one_provider(gateway, fake_upstream)
    text, exc = await asyncio.wait_for(read_until_error(gw.openai()), 5)
    assert exc is None
    assert text == FULL_TEXT


@pytest.mark.parametrize("after", [1, 4])
async def test_broken_stream_error_frame_is_openai_shaped(gateway, fake_upstream, after):
    a, gw = await one_provider(gateway, fake_upstream)
    a.queue(BreakStream(after=after))
    async with gw.http().post(
        "/v1/chat/completions", json={"model": "m", "messages": MESSAGES, "stream": True}
    ) as resp:
        assert resp.status == 200
        body = (await resp.read()).decode()
    frames = [block for block in body.split("\n\n") if block.strip()]
    last = frames[-1]
    assert last.startswith("data: "), frames
    error = orjson.loads(last[len("data: ") :])["error"]
    assert isinstance(error["message"], str) and error["message"]
    assert "type" in error
    assert "[DONE]" not in body


async def test_stream_without_include_usage_gets_no_usage_chunk(gateway, fake_upstream):
    """Clients that did not ask for usage read `chunk.choices[0]` on every chunk; a usage chunk
    (empty `choices`) they did not ask for breaks them."""
    a, gw = await one_provider(gateway, fake_upstream)
    stream = await gw.openai().chat.completions.create(model="m", messages=MESSAGES, stream=True)
    chunks = [chunk async for chunk in stream]
    assert chunks, "no chunks"
    assert all(chunk.choices for chunk in chunks), [c.model_dump() for c in chunks if not c.choices]
    assert all(chunk.usage is None for chunk in chunks)


async def test_client_hanging_up_mid_stream_releases_the_upstream_and_is_recorded(
    gateway, fake_upstream, tmp_path
):
    """A client that goes away mid-stream is not an upstream failure: the gateway stops reading
    the upstream at once and the record says the client left."""
    a, gw = await one_provider(gateway, fake_upstream)
    a.default = Reply(content=" ".join(f"w{i}" for i in range(40)), token_delay=0.05)
    body = {"model": "m", "messages": MESSAGES, "stream": True}
    session = gw.http()
    resp = await session.post("/v1/chat/completions", json=body)
    assert resp.status == 200
    await resp.content.readany()  # the answer has started
    resp.close()  # hang up
    for _ in range(100):
        if a.in_flight == 0:
            break
        await asyncio.sleep(0.02)
    assert a.in_flight == 0, "the upstream is still being read for a client that left"
    await gw.app.services.recorder.flush()
    (record,) = recent_records(tmp_path / "records.db")
    assert record["error_type"] == "client_disconnected"
    assert record["status"] == 200
