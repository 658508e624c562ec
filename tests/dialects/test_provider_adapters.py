"""Anthropic and Gemini adapters against the fake upstreams, over real HTTP.

Each test does what the pipeline will do on a translated request: decode the client body,
encode it for the upstream, build the request with the adapter, send it, translate the answer.
"""

from __future__ import annotations

import aiohttp
import orjson
from dialect_helpers import ANTHROPIC, GEMINI, OPENAI, events
from fakes.anthropic_upstream import FakeAnthropic
from fakes.gemini_upstream import FakeGemini

from apex_ai_proxy.config import ProviderConfig
from apex_ai_proxy.dialects import get_dialect
from apex_ai_proxy.dialects.neutral import NeutralRequest
from apex_ai_proxy.providers.anthropic import AnthropicAdapter
from apex_ai_proxy.providers.base import ProviderAdapter, Target
from apex_ai_proxy.sse import SSEParser

CLIENT_BODY = {
    "model": "alias",
    "messages": [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "Weather in Paris?"},
    ],
    "tools": [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ],
}


def adapter_for(kind: str, base_url: str, **kw) -> ProviderAdapter:
    from apex_ai_proxy.providers.gemini import GeminiAdapter

    cls = AnthropicAdapter if kind == "anthropic" else GeminiAdapter
    return cls(kind, ProviderConfig(kind=kind, base_url=base_url, api_key="secret-key", **kw))


async def send(
    adapter: ProviderAdapter, req: NeutralRequest, stream: bool, model: str
) -> tuple[int, bytes]:
    dialect = get_dialect(adapter.dialect)
    body = adapter.prepare_chat_body(dialect.encode_request(req, model, stream), model, stream)
    key = adapter.keys_from(["secret-key"])[0]
    target = Target(adapter.name, adapter, model, [key])
    url = adapter.chat_url(adapter.base_for(target), model, stream)
    upstream = adapter.build(target, key, url, orjson.dumps(body))
    async with (
        aiohttp.ClientSession() as session,
        session.post(upstream.url, data=upstream.body, headers=upstream.headers) as resp,
    ):
        return resp.status, await resp.read()


def stream_to(client: str, req: NeutralRequest, upstream: str, raw: bytes) -> bytes:
    parser, decoder, encoder = (
        SSEParser(),
        get_dialect(upstream).stream_decoder(),
        get_dialect(client).stream_encoder(req),
    )
    out = b""
    for ev in parser.feed(raw) + parser.flush():
        for neutral in decoder.feed(ev):
            out += encoder.encode(neutral)
    for neutral in decoder.finish():
        out += encoder.encode(neutral)
    return out + encoder.finish()


def test_adapter_urls_and_headers():
    anth = adapter_for("anthropic", "https://api.anthropic.com/")
    key = anth.keys_from(["k1"])[0]
    assert anth.chat_url(anth.base_url, "claude", True) == "https://api.anthropic.com/v1/messages"
    assert (
        anth.count_tokens_url(anth.base_url, "m")
        == "https://api.anthropic.com/v1/messages/count_tokens"
    )
    # The default version is a static header a same-dialect client's own version may replace.
    assert anth.auth_headers(key) == {"x-api-key": "k1"}
    assert anth.static_headers["anthropic-version"] == "2023-06-01"
    pinned = adapter_for("anthropic", "https://x", api_version="2024-01-01")
    assert pinned.auth_headers(key)["anthropic-version"] == "2024-01-01"
    gem = adapter_for("gemini", "https://generativelanguage.googleapis.com")
    assert (
        gem.chat_url(gem.base_url, "gemini-2.5-pro", False)
        == "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-pro:generateContent"
    )
    assert gem.chat_url(gem.base_url, "models/gemini-2.5-pro", True).endswith(
        "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
    )
    assert gem.auth_headers(key) == {"x-goog-api-key": "k1"}
    assert "model" not in gem.prepare_chat_body({"model": "x", "contents": []}, "x", False)


async def test_openai_client_via_anthropic_upstream_with_parallel_tools():
    async with FakeAnthropic() as fake:
        fake.push_tool_calls(
            [("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Lyon"})]
        )
        req = OPENAI.decode_request(CLIENT_BODY)
        status, raw = await send(adapter_for("anthropic", fake.base_url), req, False, "claude-up")
    assert status == 200
    got = fake.requests[0]
    assert (
        got.headers["x-api-key"] == "secret-key"
        and got.headers["anthropic-version"] == "2023-06-01"
    )
    assert (
        got.json["model"] == "claude-up"
        and got.json["system"] == "sys"
        and got.json["max_tokens"] == 8192
    )
    out = OPENAI.encode_response(ANTHROPIC.decode_response(orjson.loads(raw)), req)
    calls = out["choices"][0]["message"]["tool_calls"]
    assert [orjson.loads(c["function"]["arguments"]) for c in calls] == [
        {"city": "Paris"},
        {"city": "Lyon"},
    ]
    assert out["choices"][0]["finish_reason"] == "tool_calls"


async def test_anthropic_fake_streams_thinking_with_signature():
    async with FakeAnthropic() as fake:
        fake.push_thinking("hmm", "sig-9", text="42")
        req = OPENAI.decode_request({**CLIENT_BODY, "stream": True, "reasoning_effort": "low"})
        status, raw = await send(adapter_for("anthropic", fake.base_url), req, True, "claude-up")
    assert status == 200 and fake.requests[0].json["stream"] is True
    assert fake.requests[0].json["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    seq = events(stream_to("openai_chat", req, "anthropic", raw))
    deltas = [d["choices"][0]["delta"] for _, d in seq if d != "[DONE]" and d["choices"]]
    assert "".join(d.get("reasoning_content", "") for d in deltas) == "hmm"
    assert [d["reasoning_signature"] for d in deltas if "reasoning_signature" in d] == ["sig-9"]
    assert "".join(d.get("content", "") for d in deltas) == "42"


async def test_anthropic_fake_error_status_and_body():
    async with FakeAnthropic() as fake:
        fake.push_error(529, headers={"retry-after": "3"})
        status, raw = await send(
            adapter_for("anthropic", fake.base_url), OPENAI.decode_request(CLIENT_BODY), False, "c"
        )
    assert status == 529 and orjson.loads(raw)["error"]["type"] == "api_error"


async def test_anthropic_fake_break_mid_stream():
    async with FakeAnthropic() as fake:
        fake.push_break("partial answer here")
        req = OPENAI.decode_request({**CLIENT_BODY, "stream": True})
        adapter = adapter_for("anthropic", fake.base_url)
        body = ANTHROPIC.encode_request(req, "c", True)
        raw = b""
        async with (
            aiohttp.ClientSession() as session,
            session.post(adapter.chat_url(fake.base_url, "c", True), json=body) as resp,
        ):
            try:
                async for piece in resp.content.iter_any():
                    raw += piece
            except aiohttp.ClientPayloadError:
                pass  # how the cut shows depends on timing; the translation must flag it either way
    seq = events(stream_to("openai_chat", req, "anthropic", raw))
    assert seq[1][1]["choices"][0]["delta"] == {"content": "part"}
    assert seq[-1][1]["error"]["type"] == "server_error"


async def test_anthropic_client_via_gemini_upstream():
    async with FakeGemini() as fake:
        fake.push_tool_calls([("get_weather", {"city": "Paris"})])
        req = ANTHROPIC.decode_request(
            {
                "model": "alias",
                "max_tokens": 50,
                "messages": [{"role": "user", "content": "weather?"}],
                "tools": [
                    {
                        "name": "get_weather",
                        "input_schema": {
                            "type": "object",
                            "properties": {"city": {"type": "string"}},
                            "additionalProperties": False,
                        },
                    }
                ],
            }
        )
        status, raw = await send(adapter_for("gemini", fake.base_url), req, False, "gemini-up")
    assert status == 200
    got = fake.requests[0]
    assert got.path == "/v1beta/models/gemini-up:generateContent"
    assert got.headers["x-goog-api-key"] == "secret-key"
    assert "model" not in got.json
    assert got.json["tools"][0]["functionDeclarations"][0]["parameters"] == {
        "type": "object",
        "properties": {"city": {"type": "string"}},
    }
    out = ANTHROPIC.encode_response(GEMINI.decode_response(orjson.loads(raw)), req)
    assert out["stop_reason"] == "tool_use" and out["content"][0]["input"] == {"city": "Paris"}


async def test_gemini_fake_streams_with_alt_sse():
    async with FakeGemini() as fake:
        fake.push_thinking("thinking hard", "tsig", text="The answer is 42.")
        req = ANTHROPIC.decode_request(
            {
                "model": "alias",
                "max_tokens": 5000,
                "stream": True,
                "thinking": {"type": "enabled", "budget_tokens": 2000},
                "messages": [{"role": "user", "content": "q"}],
            }
        )
        status, raw = await send(adapter_for("gemini", fake.base_url), req, True, "gemini-up")
    assert status == 200 and fake.requests[0].query == {"alt": "sse"}
    assert fake.requests[0].json["generationConfig"]["thinkingConfig"] == {
        "thinkingBudget": 2000,
        "includeThoughts": True,
    }
    seq = events(stream_to("anthropic", req, "gemini", raw))
    text = "".join(d["delta"].get("text", "") for n, d in seq if n == "content_block_delta")
    thinking = "".join(d["delta"].get("thinking", "") for n, d in seq if n == "content_block_delta")
    sig = [
        d["delta"]["signature"]
        for n, d in seq
        if n == "content_block_delta" and "signature" in d["delta"]
    ]
    assert (thinking, text, sig) == ("thinking hard", "The answer is 42.", ["tsig"])
    assert seq[-1][0] == "message_stop"
