"""Tool names a target rejects get aliases: deterministic, reversible, never colliding."""

from __future__ import annotations

from apex_ai_proxy.dialects.toolnames import GEMINI_NAME, OPENAI_NAME, ToolNames


def test_gemini_tool_names_must_start_with_a_letter():
    names = ToolNames()
    assert names.to_upstream("9lives", OPENAI_NAME) == "9lives"
    alias = names.to_upstream("9lives", GEMINI_NAME)
    assert GEMINI_NAME.match(alias) and names.to_client(alias) == "9lives"
    assert names.to_upstream("9lives", GEMINI_NAME) == alias  # deterministic across attempts


def test_tool_name_aliases_never_collide():
    names = ToolNames()
    assert names.to_upstream("a.b", OPENAI_NAME) != names.to_upstream("a/b", OPENAI_NAME)
    long = "x" * 80
    alias = names.to_upstream(long, OPENAI_NAME)
    assert len(alias) <= 64 and names.to_client(alias) == long
