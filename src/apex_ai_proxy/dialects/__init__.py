"""Protocol translation: one neutral form, a decoder and an encoder per dialect.

    get_dialect("openai_chat" | "anthropic" | "gemini" | …) -> Dialect
    estimate_tokens(req) -> int          prompt-size estimate for upstreams that cannot count

Dialect modules are imported on first use; a new dialect registers one line in `_DIALECTS`.
"""

from __future__ import annotations

import importlib

from apex_ai_proxy.dialects.base import Dialect, StreamDecoder, StreamEncoder
from apex_ai_proxy.dialects.estimate import estimate_tokens

_DIALECTS: dict[str, str] = {
    "openai_chat": "apex_ai_proxy.dialects.openai_chat:OpenAIChatDialect",
    "anthropic": "apex_ai_proxy.dialects.anthropic:AnthropicDialect",
    "gemini": "apex_ai_proxy.dialects.gemini:GeminiDialect",
    "responses": "apex_ai_proxy.dialects.responses:ResponsesDialect",
}
_LOADED: dict[str, Dialect] = {}


def get_dialect(name: str) -> Dialect:
    """The (stateless, shared) dialect called `name`; KeyError for an unknown name."""
    dialect = _LOADED.get(name)
    if dialect is None:
        module_name, _, class_name = _DIALECTS[name].partition(":")
        dialect = getattr(importlib.import_module(module_name), class_name)()
        _LOADED[name] = dialect
    return dialect


def dialect_names() -> list[str]:
    return list(_DIALECTS)


__all__ = [
    "Dialect",
    "StreamDecoder",
    "StreamEncoder",
    "dialect_names",
    "estimate_tokens",
    "get_dialect",
]
