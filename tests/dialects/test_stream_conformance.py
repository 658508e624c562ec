"""Streams: upstream SSE -> neutral events -> client SSE, checked by the official SDK parsers."""

from __future__ import annotations

import anthropic
import openai
import orjson
import pytest
from dialect_helpers import ANTHROPIC, GEMINI, OPENAI, events, serve_bytes, translate_stream
from fakes.anthropic_upstream import Canned as AnthropicCanned
from fakes.anthropic_upstream import FakeAnthropic
from fakes.gemini_upstream import Canned as GeminiCanned
from fakes.gemini_upstream import FakeGemini

from apex_ai_proxy.dialects.neutral import NeutralRequest

CLAUDE_BLOCKS = [
    {"type": "thinking", "thinking": "The user wants two things.", "signature": "sig-xyz"},
    {"type": "text", "text": "Let me check both."},
    {
        "type": "tool_use",
        "id": "toolu_1",
        "name": "get_weather",
        "input": {"city": "Paris", "unit": "c"},
    },
    {"type": "tool_use", "id": "toolu_2", "name": "now", "input": {}},
]


def anthropic_upstream_bytes(blocks=CLAUDE_BLOCKS, stop="tool_use", usage=None) -> bytes:
    usage = usage or {"input_tokens": 30, "output_tokens": 12, "cache_read_input_tokens": 70}
    return b"".join(
        FakeAnthropic().stream_frames(AnthropicCanned(blocks, stop_reason=stop, usage=usage))
    )


def chunk(
    delta: dict | None = None,
    finish: str | None = None,
    usage: dict | None = None,
    choices: bool = True,
) -> bytes:
    body: dict = {
        "id": "chatcmpl-9",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-up",
    }
    body["choices"] = (
        [{"index": 0, "delta": delta or {}, "finish_reason": finish}] if choices else []
    )
    if usage:
        body["usage"] = usage
    return b"data: " + orjson.dumps(body) + b"\n\n"


OPENAI_UPSTREAM = b"".join(
    [
        chunk({"role": "assistant", "content": ""}),
        chunk({"reasoning_content": "Need "}),
        chunk({"reasoning_content": "tools."}),
        chunk({"content": "Checking."}),
        chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_a",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": ""},
                    }
                ]
            }
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}),
        chunk(
            {
                "tool_calls": [
                    {
                        "index": 1,
                        "id": "call_b",
                        "type": "function",
                        "function": {"name": "now", "arguments": ""},
                    }
                ]
            }
        ),
        chunk(finish="tool_calls"),
        chunk(
            choices=False,
            usage={
                "prompt_tokens": 100,
                "completion_tokens": 20,
                "total_tokens": 120,
                "prompt_tokens_details": {"cached_tokens": 60},
            },
        ),
        b"data: [DONE]\n\n",
    ]
)


def openai_req(include_usage: bool = True) -> NeutralRequest:
    body = {"model": "alias", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    return OPENAI.decode_request(body)


def anthropic_req() -> NeutralRequest:
    return ANTHROPIC.decode_request(
        {
            "model": "alias",
            "max_tokens": 100,
            "messages": [{"role": "user", "content": "hi"}],
            "stream": True,
        }
    )


def assert_anthropic_block_discipline(raw: bytes) -> None:
    """message_start first, blocks never overlap, exactly one stop per block, message_stop last."""
    seq = events(raw)
    assert all(name == data["type"] for name, data in seq), "every frame needs its event: line"
    names = [name for name, _ in seq]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    open_index = None
    stopped = set()
    for name, data in seq:
        if name == "content_block_start":
            assert open_index is None, "blocks overlap"
            open_index = data["index"]
            assert open_index == len(stopped)
        elif name == "content_block_delta":
            assert data["index"] == open_index
        elif name == "content_block_stop":
            assert data["index"] == open_index and open_index not in stopped
            stopped.add(open_index)
            open_index = None
    assert open_index is None


# --- Anthropic upstream -> OpenAI client -------------------------------------------------------


async def test_anthropic_stream_to_openai_sdk_with_parallel_tools_and_thinking():
    raw = translate_stream(anthropic_upstream_bytes(), "anthropic", "openai_chat", openai_req())
    async with serve_bytes("/v1/chat/completions", raw) as (base, _):
        client = openai.AsyncOpenAI(base_url=base + "/v1", api_key="x", max_retries=0)
        stream = await client.chat.completions.create(
            model="alias", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        chunks = [c async for c in stream]
        await client.close()
    assert {c.id for c in chunks} == {"msg_fake_1"} and {c.model for c in chunks} == {
        "claude-fake-1"
    }
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    reasoning = "".join(
        (c.choices[0].delta.model_extra or {}).get("reasoning_content", "")
        for c in chunks
        if c.choices
    )
    signature = [
        (c.choices[0].delta.model_extra or {}).get("reasoning_signature")
        for c in chunks
        if c.choices
    ]
    assert text == "Let me check both." and reasoning == "The user wants two things."
    assert "sig-xyz" in signature
    calls: dict[int, dict] = {}
    for c in chunks:
        for tc in (c.choices[0].delta.tool_calls or []) if c.choices else []:
            entry = calls.setdefault(
                tc.index, {"id": tc.id, "name": tc.function.name, "type": tc.type, "args": ""}
            )
            entry["args"] += tc.function.arguments or ""
    assert calls == {
        0: {
            "id": "toolu_1",
            "name": "get_weather",
            "type": "function",
            "args": '{"city": "Paris", "unit": "c"}'.replace(" ", ""),
        },
        1: {"id": "toolu_2", "name": "now", "type": "function", "args": "{}"},
    }
    finishes = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finishes == ["tool_calls"]
    assert chunks[-1].choices == [] and chunks[-1].usage.prompt_tokens == 100
    assert chunks[-1].usage.prompt_tokens_details.cached_tokens == 70


async def test_usage_chunk_only_when_client_asked():
    raw = translate_stream(
        anthropic_upstream_bytes(), "anthropic", "openai_chat", openai_req(include_usage=False)
    )
    seq = events(raw)
    assert seq[-1] == (None, "[DONE]")
    assert all(data["choices"] for _, data in seq[:-1])


async def test_mid_stream_break_anthropic_upstream_openai_sdk_raises():
    full = anthropic_upstream_bytes()
    cut = full[: full.index(b"content_block_stop")]  # the socket died inside the first block
    raw = translate_stream(cut, "anthropic", "openai_chat", openai_req())
    assert b"[DONE]" not in raw
    async with serve_bytes("/v1/chat/completions", raw) as (base, _):
        client = openai.AsyncOpenAI(base_url=base + "/v1", api_key="x", max_retries=0)
        stream = await client.chat.completions.create(
            model="alias", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        with pytest.raises(openai.APIError, match="ended before"):
            async for _ in stream:
                pass
        await client.close()


def test_upstream_error_event_relayed_to_openai_client():
    frames = FakeAnthropic().stream_frames(AnthropicCanned(CLAUDE_BLOCKS))
    error = b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
    seq = events(
        translate_stream(b"".join(frames[:5]) + error, "anthropic", "openai_chat", openai_req())
    )
    assert seq[-1][1] == {
        "error": {
            "message": "Overloaded",
            "type": "server_error",
            "param": None,
            "code": "server_error",
        }
    }
    assert all(data != "[DONE]" for _, data in seq)


# --- OpenAI upstream -> Anthropic client -------------------------------------------------------


async def test_openai_stream_to_anthropic_sdk_accumulates():
    raw = translate_stream(OPENAI_UPSTREAM, "openai_chat", "anthropic", anthropic_req())
    assert_anthropic_block_discipline(raw)
    async with serve_bytes("/v1/messages", raw) as (base, _):
        client = anthropic.AsyncAnthropic(base_url=base, api_key="x", max_retries=0)
        async with client.messages.stream(
            model="alias", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
        ) as stream:
            message = await stream.get_final_message()
        await client.close()
    assert message.id == "chatcmpl-9" and message.model == "gpt-up"
    assert [b.type for b in message.content] == ["thinking", "text", "tool_use", "tool_use"]
    assert message.content[0].thinking == "Need tools."
    assert message.content[1].text == "Checking."
    assert message.content[2].input == {"city": "Paris"} and message.content[2].id == "call_a"
    assert message.content[3].input == {} and message.content[3].name == "now"
    assert message.stop_reason == "tool_use"
    # input_tokens exclude cached ones on the Anthropic side.
    assert message.usage.input_tokens == 40 and message.usage.cache_read_input_tokens == 60
    assert message.usage.output_tokens == 20


async def test_mid_stream_break_openai_upstream_anthropic_sdk_raises():
    cut = OPENAI_UPSTREAM[: OPENAI_UPSTREAM.index(b"Checking")]
    raw = translate_stream(cut, "openai_chat", "anthropic", anthropic_req())
    assert events(raw)[-1][0] == "error"
    async with serve_bytes("/v1/messages", raw) as (base, _):
        client = anthropic.AsyncAnthropic(base_url=base, api_key="x", max_retries=0)
        with pytest.raises(anthropic.APIStatusError, match="ended before"):
            async with client.messages.stream(
                model="alias", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
            ) as stream:
                await stream.get_final_message()
        await client.close()


def test_openai_hosts_repeating_index_zero_for_parallel_calls():
    upstream = b"".join(
        [
            chunk({"role": "assistant"}),
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "a", "arguments": "{}"},
                        }
                    ]
                }
            ),
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "c2",
                            "type": "function",
                            "function": {"name": "b", "arguments": '{"x":1}'},
                        }
                    ]
                }
            ),
            chunk(finish="stop"),
        ]
    )
    raw = translate_stream(upstream, "openai_chat", "anthropic", anthropic_req())
    assert_anthropic_block_discipline(raw)
    starts = [d["content_block"] for n, d in events(raw) if n == "content_block_start"]
    assert [(s["id"], s["name"]) for s in starts] == [("c1", "a"), ("c2", "b")]
    delta = [d for n, d in events(raw) if n == "message_delta"][0]
    assert delta["delta"]["stop_reason"] == "tool_use"


def test_thinking_signature_then_new_thinking_block():
    """Interleaved thinking: a signed block is closed; more reasoning opens a new block."""
    blocks = [
        {"type": "thinking", "thinking": "one", "signature": "s1"},
        {"type": "thinking", "thinking": "two", "signature": "s2"},
        {"type": "redacted_thinking", "data": "ENC"},
        {"type": "text", "text": "done"},
    ]
    raw = translate_stream(
        anthropic_upstream_bytes(blocks, "end_turn"), "anthropic", "anthropic", anthropic_req()
    )
    assert_anthropic_block_discipline(raw)
    starts = [d["content_block"]["type"] for n, d in events(raw) if n == "content_block_start"]
    assert starts == ["thinking", "thinking", "redacted_thinking", "text"]
    sigs = [
        d["delta"]["signature"]
        for n, d in events(raw)
        if n == "content_block_delta" and d["delta"]["type"] == "signature_delta"
    ]
    assert sigs == ["s1", "s2"]


# --- Gemini upstream ---------------------------------------------------------------------------


def gemini_upstream_bytes(canned: GeminiCanned) -> bytes:
    return b"".join(
        b"data: " + orjson.dumps(c) + b"\r\n\r\n" for c in FakeGemini().stream_chunks(canned)
    )


async def test_gemini_stream_to_anthropic_sdk_with_thoughts_and_calls():
    canned = GeminiCanned(
        [
            {"text": "considering options", "thought": True, "thoughtSignature": "gsig"},
            {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}},
            {"functionCall": {"name": "now", "args": {}}},
        ],
        usage={
            "promptTokenCount": 50,
            "candidatesTokenCount": 10,
            "thoughtsTokenCount": 5,
            "totalTokenCount": 65,
        },
    )
    raw = translate_stream(gemini_upstream_bytes(canned), "gemini", "anthropic", anthropic_req())
    assert_anthropic_block_discipline(raw)
    async with serve_bytes("/v1/messages", raw) as (base, _):
        client = anthropic.AsyncAnthropic(base_url=base, api_key="x", max_retries=0)
        async with client.messages.stream(
            model="alias", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
        ) as stream:
            message = await stream.get_final_message()
        await client.close()
    assert message.content[0].type == "thinking" and message.content[0].signature == "gsig"
    assert message.content[0].thinking == "considering options"
    assert [(b.name, b.input) for b in message.content[1:]] == [
        ("get_weather", {"city": "Oslo"}),
        ("now", {}),
    ]
    assert message.stop_reason == "tool_use"
    assert message.usage.output_tokens == 15 and message.usage.input_tokens == 50


async def test_gemini_stream_to_openai_sdk():
    raw = translate_stream(
        gemini_upstream_bytes(GeminiCanned([{"text": "Hello there, friend"}])),
        "gemini",
        "openai_chat",
        openai_req(),
    )
    async with serve_bytes("/v1/chat/completions", raw) as (base, _):
        client = openai.AsyncOpenAI(base_url=base + "/v1", api_key="x", max_retries=0)
        stream = await client.chat.completions.create(
            model="alias", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        chunks = [c async for c in stream]
        await client.close()
    assert (
        "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        == "Hello there, friend"
    )
    assert [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ] == ["stop"]
    assert chunks[-1].usage.total_tokens == 15
    assert {c.id for c in chunks} == {"resp_fake_1"}


def test_gemini_truncated_stream_reports_error():
    full = gemini_upstream_bytes(GeminiCanned([{"text": "Hello there, friend"}]))
    cut = full[: full.index(b"finishReason") - 200]
    seq = events(translate_stream(cut, "gemini", "anthropic", anthropic_req()))
    assert seq[-1][0] == "error" and seq[-1][1]["error"]["type"] == "api_error"


# --- a Gemini-dialect client ---------------------------------------------------------------------


def test_gemini_encoder_for_openai_upstream():
    req = GEMINI.decode_request(
        {"model": "alias", "contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    )
    seq = events(translate_stream(OPENAI_UPSTREAM, "openai_chat", "gemini", req))
    parts = [p for _, d in seq for p in d["candidates"][0]["content"]["parts"]]
    assert {"text": "Need ", "thought": True} in parts
    calls = [p["functionCall"] for p in parts if "functionCall" in p]
    assert calls == [
        {"id": "call_a", "name": "get_weather", "args": {"city": "Paris"}},
        {"id": "call_b", "name": "now", "args": {}},
    ]
    last = seq[-1][1]
    assert last["candidates"][0]["finishReason"] == "STOP"
    assert last["usageMetadata"] == {
        "promptTokenCount": 100,
        "candidatesTokenCount": 20,
        "totalTokenCount": 120,
        "cachedContentTokenCount": 60,
    }
    assert {d["responseId"] for _, d in seq} == {"chatcmpl-9"}


def test_gemini_encoder_error_frame():
    req = GEMINI.decode_request(
        {"model": "alias", "contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    )
    encoder = GEMINI.stream_encoder(req)
    seq = events(encoder.error(503, "all upstreams down"))
    assert seq == [
        (None, {"error": {"code": 503, "message": "all upstreams down", "status": "UNAVAILABLE"}})
    ]
    assert encoder.finish() == b""


def test_anthropic_encoder_error_frame_and_nothing_after():
    encoder = ANTHROPIC.stream_encoder(anthropic_req())
    seq = events(encoder.error(429, "slow down"))
    assert seq == [
        ("error", {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}})
    ]
    assert encoder.finish() == b""


def test_tool_names_mapped_back_in_streams():
    req = OPENAI.decode_request(
        {
            "model": "alias",
            "messages": [{"role": "user", "content": "go"}],
            "tools": [
                {
                    "type": "function",
                    "function": {
                        "name": "fs.read/file",
                        "parameters": {"type": "object", "properties": {}},
                    },
                }
            ],
        }
    )
    alias = ANTHROPIC.encode_request(req, "claude", True)["tools"][0]["name"]
    blocks = [{"type": "tool_use", "id": "toolu_1", "name": alias, "input": {}}]
    seq = events(
        translate_stream(anthropic_upstream_bytes(blocks), "anthropic", "openai_chat", req)
    )
    names = [
        tc["function"]["name"]
        for _, d in seq
        if d != "[DONE]" and d["choices"]
        for tc in d["choices"][0]["delta"].get("tool_calls", [])
        if "name" in tc["function"]
    ]
    assert names == ["fs.read/file"]
