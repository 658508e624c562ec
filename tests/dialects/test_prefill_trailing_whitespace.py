"""An assistant prefill for Anthropic loses its trailing whitespace (Anthropic rejects it)."""

from __future__ import annotations

from dialect_helpers import translate_request


def test_prefill_trailing_whitespace_stripped_for_anthropic():
    source = {
        "model": "m",
        "messages": [
            {"role": "user", "content": "list"},
            {"role": "assistant", "content": "Sure:\n  "},
        ],
    }
    body, _ = translate_request(source, "openai_chat", "anthropic")
    assert body["messages"][-1] == {
        "role": "assistant",
        "content": [{"type": "text", "text": "Sure:"}],
    }
