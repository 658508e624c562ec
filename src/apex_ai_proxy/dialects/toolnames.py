"""Tool names a target would reject, mapped to a valid alias and back.

OpenAI and Anthropic accept ``^[a-zA-Z0-9_-]{1,64}$``; Gemini also wants the name to start
with a letter or an underscore. An invalid name becomes a deterministic alias (invalid characters
replaced by ``_``, a short hash appended so two names never collide), so every attempt of a
failover chain produces the same alias. Encoders of client dialects map aliases back.
"""

from __future__ import annotations

import hashlib
import re

OPENAI_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
ANTHROPIC_NAME = OPENAI_NAME
GEMINI_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_.-]{0,63}$")

_INVALID = re.compile(r"[^a-zA-Z0-9_]")


def _alias(name: str) -> str:
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    base = _INVALID.sub("_", name)
    if not base or not (base[0].isalpha() or base[0] == "_"):
        base = "t_" + base
    return f"{base[:55]}_{digest}"


class ToolNames:
    """Upstream alias -> client name, for the names that had to change."""

    __slots__ = ("_to_client",)

    def __init__(self) -> None:
        self._to_client: dict[str, str] = {}

    def to_upstream(self, name: str, valid: re.Pattern[str]) -> str:
        if valid.match(name):
            return name
        alias = _alias(name)
        self._to_client[alias] = name
        return alias

    def to_client(self, name: str) -> str:
        return self._to_client.get(name, name)

    def __bool__(self) -> bool:
        return bool(self._to_client)

    def __repr__(self) -> str:
        return f"ToolNames({self._to_client!r})"
