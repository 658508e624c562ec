"""Whole (non-streamed) responses: decode in the upstream's dialect, encode in the client's."""

from __future__ import annotations

import base64

import pytest
from dialect_helpers import ANTHROPIC, GEMINI, OPENAI

from apex_ai_proxy.dialects.gemini.response import upstream_signature
from apex_ai_proxy.dialects.neutral import NeutralRequest, NeutralResponse, Usage

REQ = NeutralRequest(model="alias", source_dialect="openai_chat")

CLAUDE_ANSWER = {
    "id": "msg_01",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-x",
    "content": [
        {"type": "thinking", "thinking": "Let me see.", "signature": "sig-1"},
        {"type": "redacted_thinking", "data": "ENC"},
        {"type": "text", "text": "Calling tools."},
        {"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "toolu_b", "name": "now", "input": {}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 100,
        "output_tokens": 50,
        "cache_read_input_tokens": 900,
        "cache_creation_input_tokens": 20,
    },
}

OPENAI_ANSWER = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "gpt-x-2025",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": None,
                "reasoning_content": "thinking...",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    },
                    {
                        "id": "call_2",
                        "type": "function",
                        "function": {"name": "now", "arguments": ""},
                    },
                ],
            },
            "finish_reason": "tool_calls",
        }
    ],
    "usage": {
        "prompt_tokens": 1000,
        "completion_tokens": 60,
        "total_tokens": 1060,
        "prompt_tokens_details": {"cached_tokens": 800},
        "completion_tokens_details": {"reasoning_tokens": 40},
    },
}

GEMINI_ANSWER = {
    "candidates": [
        {
            "content": {
                "role": "model",
                "parts": [
                    {"text": "pondering", "thought": True, "thoughtSignature": "tsig"},
                    {
                        "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                        "thoughtSignature": "fsig",
                    },
                    {"functionCall": {"name": "now", "args": {}}},
                ],
            },
            "finishReason": "STOP",
            "index": 0,
        }
    ],
    "usageMetadata": {
        "promptTokenCount": 1000,
        "candidatesTokenCount": 20,
        "thoughtsTokenCount": 40,
        "cachedContentTokenCount": 800,
        "totalTokenCount": 1060,
    },
    "modelVersion": "gemini-2.5-pro",
    "responseId": "resp-xyz",
}


def test_claude_answer_for_openai_client():
    out = OPENAI.encode_response(ANTHROPIC.decode_response(CLAUDE_ANSWER), REQ)
    assert out["id"] == "msg_01" and out["model"] == "claude-sonnet-x"
    choice = out["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    message = choice["message"]
    assert message["content"] == "Calling tools."
    assert message["reasoning_content"] == "Let me see."
    assert message["reasoning_signature"] == "sig-1"
    assert message["reasoning_details"] == [
        {"type": "reasoning.text", "text": "Let me see.", "signature": "sig-1"},
        {"type": "reasoning.encrypted", "data": "ENC"},
    ]
    assert [c["function"]["arguments"] for c in message["tool_calls"]] == ['{"city":"Paris"}', "{}"]
    assert [c["id"] for c in message["tool_calls"]] == ["toolu_a", "toolu_b"]


def test_usage_cached_tokens_conversion_anthropic_to_openai():
    out = OPENAI.encode_response(ANTHROPIC.decode_response(CLAUDE_ANSWER), REQ)
    # OpenAI prompt_tokens include cached ones; Anthropic input_tokens exclude them.
    assert out["usage"]["prompt_tokens"] == 100 + 900 + 20
    assert out["usage"]["prompt_tokens_details"]["cached_tokens"] == 900
    assert out["usage"]["completion_tokens"] == 50
    assert out["usage"]["total_tokens"] == 1070


def test_usage_cached_tokens_conversion_openai_to_anthropic():
    out = ANTHROPIC.encode_response(OPENAI.decode_response(OPENAI_ANSWER), REQ)
    assert out["usage"] == {
        "input_tokens": 200,
        "output_tokens": 60,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 800,
    }


def test_usage_gemini_thoughts_count_as_output():
    usage = GEMINI.usage_of_response(GEMINI_ANSWER)
    assert usage == Usage(
        input_tokens=1000, output_tokens=60, cached_tokens=800, reasoning_tokens=40
    )
    out = OPENAI.encode_response(GEMINI.decode_response(GEMINI_ANSWER), REQ)
    assert out["usage"]["completion_tokens_details"]["reasoning_tokens"] == 40
    back = GEMINI.encode_response(OPENAI.decode_response(out), REQ)
    assert back["usageMetadata"] == GEMINI_ANSWER["usageMetadata"]


def test_zero_argument_tool_openai_answer_to_anthropic():
    out = ANTHROPIC.encode_response(OPENAI.decode_response(OPENAI_ANSWER), REQ)
    assert out["stop_reason"] == "tool_use"
    assert out["content"][0] == {"type": "thinking", "thinking": "thinking...", "signature": ""}
    assert out["content"][1:] == [
        {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "call_2", "name": "now", "input": {}},
    ]
    assert out["id"] == "chatcmpl-1" and out["model"] == "gpt-x-2025"


def test_gemini_function_calls_become_tool_use_with_ids():
    resp = GEMINI.decode_response(GEMINI_ANSWER)
    assert (
        resp.stop_reason == "tool_calls"
        and resp.id == "resp-xyz"
        and resp.model == "gemini-2.5-pro"
    )
    out = ANTHROPIC.encode_response(resp, REQ)
    assert out["stop_reason"] == "tool_use"
    assert out["content"][0] == {"type": "thinking", "thinking": "pondering", "signature": "tsig"}
    ids = [b["id"] for b in out["content"] if b["type"] == "tool_use"]
    assert len(ids) == 2 and len(set(ids)) == 2
    oai = OPENAI.encode_response(resp, REQ)
    assert oai["choices"][0]["message"]["tool_calls"][0]["extra_content"] == {
        "google": {"thought_signature": "fsig"}
    }


def test_anthropic_answer_for_gemini_client():
    out = GEMINI.encode_response(ANTHROPIC.decode_response(CLAUDE_ANSWER), REQ)
    parts = out["candidates"][0]["content"]["parts"]
    # "sig-1" is not base64, which Google's SDKs require: it travels wrapped, and comes back.
    wrapped = base64.b64encode(b"apex-sig:sig-1").decode()
    assert parts[0] == {"text": "Let me see.", "thought": True, "thoughtSignature": wrapped}
    assert upstream_signature(wrapped) == "sig-1"
    assert parts[1] == {"text": "Calling tools."}
    assert parts[2]["functionCall"] == {
        "id": "toolu_a",
        "name": "get_weather",
        "args": {"city": "Paris"},
    }
    assert out["candidates"][0]["finishReason"] == "STOP"


@pytest.mark.parametrize(
    ("anthropic", "openai", "gemini"),
    [
        ("end_turn", "stop", "STOP"),
        ("max_tokens", "length", "MAX_TOKENS"),
        ("tool_use", "tool_calls", "STOP"),
        ("refusal", "content_filter", "SAFETY"),
        ("stop_sequence", "stop", "STOP"),
    ],
)
def test_stop_reason_mapping(anthropic, openai, gemini):
    resp = ANTHROPIC.decode_response(
        {**CLAUDE_ANSWER, "content": [{"type": "text", "text": "x"}], "stop_reason": anthropic}
    )
    assert OPENAI.encode_response(resp, REQ)["choices"][0]["finish_reason"] == openai
    assert GEMINI.encode_response(resp, REQ)["candidates"][0]["finishReason"] == gemini
    assert ANTHROPIC.encode_response(resp, REQ)["stop_reason"] == anthropic


@pytest.mark.parametrize(
    "reason", ["SAFETY", "RECITATION", "PROHIBITED_CONTENT", "BLOCKLIST", "SPII"]
)
def test_gemini_filter_reasons_map_to_content_filter(reason):
    body = {
        **GEMINI_ANSWER,
        "candidates": [{"content": {"role": "model", "parts": []}, "finishReason": reason}],
    }
    assert (
        OPENAI.encode_response(GEMINI.decode_response(body), REQ)["choices"][0]["finish_reason"]
        == "content_filter"
    )
    assert ANTHROPIC.encode_response(GEMINI.decode_response(body), REQ)["stop_reason"] == "refusal"


def test_stop_sequence_kept_for_anthropic_client():
    resp = ANTHROPIC.decode_response(
        {**CLAUDE_ANSWER, "stop_reason": "stop_sequence", "stop_sequence": "END"}
    )
    assert ANTHROPIC.encode_response(resp, REQ)["stop_sequence"] == "END"


def test_openai_answer_without_usage():
    body = {**OPENAI_ANSWER}
    del body["usage"]
    resp = OPENAI.decode_response(body)
    assert resp.usage is None
    assert "usage" not in OPENAI.encode_response(resp, REQ)
    assert ANTHROPIC.encode_response(resp, REQ)["usage"]["input_tokens"] == 0


def test_usage_of_response_reads_each_dialect():
    assert OPENAI.usage_of_response(OPENAI_ANSWER) == Usage(1000, 60, 800, 0, 40)
    assert ANTHROPIC.usage_of_response(CLAUDE_ANSWER) == Usage(1020, 50, 900, 20, 0)
    assert OPENAI.usage_of_response({}) is None


def test_empty_answer_is_valid_everywhere():
    resp = NeutralResponse(id="x", model="m", stop_reason="stop")
    assert OPENAI.encode_response(resp, REQ)["choices"][0]["message"]["content"] is None
    assert ANTHROPIC.encode_response(resp, REQ)["content"] == []
    assert GEMINI.encode_response(resp, REQ)["candidates"][0]["content"]["parts"] == []
