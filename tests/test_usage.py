"""Reading usage from a relayed body without decoding the whole body (usage.usage_from_raw)."""

from __future__ import annotations

import orjson

from apex_ai_proxy.usage import usage_from_raw


def chat_body(usage: object, content: str = "hello") -> bytes:
    return orjson.dumps(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}}],
            "usage": usage,
        }
    )


def test_nested_usage_details_are_read() -> None:
    usage = {
        "prompt_tokens": 12,
        "completion_tokens": 34,
        "total_tokens": 46,
        "prompt_tokens_details": {"cached_tokens": 5, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 7, "audio_tokens": 0},
    }
    found = usage_from_raw("openai_chat", chat_body(usage))
    assert found is not None
    assert (found.input_tokens, found.output_tokens) == (12, 34)
    assert (found.cached_tokens, found.reasoning_tokens) == (5, 7)


def test_the_last_usage_key_wins_over_one_quoted_in_content() -> None:
    body = chat_body({"prompt_tokens": 1, "completion_tokens": 2}, content='"usage":{"x":1}')
    found = usage_from_raw("openai_chat", body)
    assert found is not None and (found.input_tokens, found.output_tokens) == (1, 2)


def test_a_brace_inside_a_string_falls_back_to_the_whole_body() -> None:
    usage = {"prompt_tokens": 3, "note": "a } b { c", "completion_tokens": 4}
    found = usage_from_raw("openai_chat", chat_body(usage))
    assert found is not None and (found.input_tokens, found.output_tokens) == (3, 4)


def test_gemini_usage_metadata() -> None:
    body = orjson.dumps(
        {
            "candidates": [],
            "usageMetadata": {"promptTokenCount": 8, "candidatesTokenCount": 9},
        }
    )
    found = usage_from_raw("gemini", body)
    assert found is not None and (found.input_tokens, found.output_tokens) == (8, 9)


def test_null_missing_or_broken_usage_is_none() -> None:
    assert usage_from_raw("openai_chat", chat_body(None)) is None
    assert usage_from_raw("openai_chat", b'{"choices": []}') is None
    assert usage_from_raw("openai_chat", b'{"usage": {"prompt_tokens": 1, "comp') is None
