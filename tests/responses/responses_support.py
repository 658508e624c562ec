"""Fixtures and config builders for the /v1/responses tests.

native(name)          a started FakeResponsesUpstream (kind "responses" provider)
responses_config(...) a gateway config with a response store under tmp_path
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fakes.openai_upstream import FakeUpstream
from fakes.responses_upstream import FakeResponsesUpstream

FAST_RETRY = {"cooldown_base_s": 0.3, "cooldown_max_s": 1.0, "auth_failure_cooldown_s": 3600.0}


def native_provider(fake: FakeResponsesUpstream, *keys: str) -> dict[str, Any]:
    return {
        "kind": "responses",
        "base_url": fake.base_url,
        "api_keys": list(keys) or [f"sk-{fake.name}-0"],
        "timeout": 5.0,
        "connect_timeout": 1.0,
    }


def chat_provider(fake: FakeUpstream, *keys: str) -> dict[str, Any]:
    return {
        "kind": "openai",
        "base_url": fake.base_url,
        "api_keys": list(keys) or [f"sk-{fake.name}-0"],
        "timeout": 5.0,
        "connect_timeout": 1.0,
    }


def store_section(tmp_path: Path, backend: str = "sqlite", **extra: Any) -> dict[str, Any]:
    if backend == "sqlite":
        return {"backend": "sqlite", "path": str(tmp_path / "responses.db"), **extra}
    return {"backend": "redis", "redis_url": extra.pop("redis_url"), **extra}


def responses_config(
    providers: dict[str, Any], models: dict[str, Any], store: dict[str, Any], **top: Any
) -> dict[str, Any]:
    return {
        "providers": providers,
        "models": {
            alias: {"providers": [{"provider": p} if isinstance(p, str) else p for p in entries]}
            for alias, entries in models.items()
        },
        "retry": FAST_RETRY,
        "responses_store": store,
        **top,
    }
