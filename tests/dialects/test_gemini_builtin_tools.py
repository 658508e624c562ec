"""Gemini's built-in (non-function) tools reach only Gemini and are listed as dropped elsewhere."""

from __future__ import annotations

from dialect_helpers import ANTHROPIC, GEMINI


def test_gemini_non_function_tools_only_reach_gemini():
    source = {
        "model": "gemini-x",
        "contents": [{"role": "user", "parts": [{"text": "search"}]}],
        "tools": [{"googleSearch": {}}],
    }
    req = GEMINI.decode_request(source)
    assert GEMINI.encode_request(req, "g", False)["tools"] == [{"googleSearch": {}}]
    assert "tools" not in ANTHROPIC.encode_request(req, "c", False)
    assert "tools[googleSearch]" in req.dropped
