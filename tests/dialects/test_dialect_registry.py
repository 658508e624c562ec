"""The dialect registry hands out one shared dialect object per name."""

from __future__ import annotations

from dialect_helpers import ANTHROPIC

from apex_ai_proxy.dialects import dialect_names, get_dialect


def test_registry_returns_one_shared_dialect_per_name():
    assert get_dialect("anthropic") is ANTHROPIC
    assert {"openai_chat", "anthropic", "gemini"} <= set(dialect_names())
