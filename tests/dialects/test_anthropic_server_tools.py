"""Anthropic server tools (web search) are dropped, and said to be, for other dialects."""

from __future__ import annotations

from dialect_helpers import translate_request


def test_anthropic_server_tools_dropped_for_other_dialects():
    source = {
        "model": "m",
        "max_tokens": 5,
        "messages": [{"role": "user", "content": "x"}],
        "tools": [{"type": "web_search_20250305", "name": "web_search"}],
    }
    body, req = translate_request(source, "anthropic", "openai_chat")
    assert "tools" not in body and "tools[web_search]" in req.dropped
