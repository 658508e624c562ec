"""A tool_choice without tools is not sent upstream, in either direction."""

from __future__ import annotations

from dialect_helpers import translate_request


def test_tool_choice_without_tools_not_sent():
    source = {"model": "m", "messages": [{"role": "user", "content": "x"}], "tool_choice": "none"}
    assert "tool_choice" not in translate_request(source, "openai_chat", "anthropic")[0]
    back = {
        "model": "m",
        "max_tokens": 5,
        "messages": [{"role": "user", "content": "x"}],
        "tool_choice": {"type": "none"},
    }
    assert "tool_choice" not in translate_request(back, "anthropic", "openai_chat")[0]
