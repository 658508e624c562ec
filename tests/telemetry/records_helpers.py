"""Shared by the telemetry tests: a record factory and what the fake log service received."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from typing import Any

from apex_ai_proxy.telemetry import Attempt, RequestRecord

_ids = itertools.count(1)


def build_record(**fields: Any) -> RequestRecord:
    defaults: dict[str, Any] = {
        "request_id": f"req-{next(_ids)}",
        "endpoint": "/v1/chat/completions",
        "client_dialect": "openai-chat",
        "token_name": "team-a",
        "requested_model": "gpt-4o",
        "mapped_model": "gpt-4o",
        "provider": "openai",
        "upstream_model": "gpt-4o-2024-08-06",
        "status": 200,
        "duration_ms": 120.0,
        "ttfb_ms": 40.0,
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "cost_usd": 0.001,
        "attempts": [Attempt("openai", "key-1", "gpt-4o-2024-08-06", 200, 100.0)],
    }
    defaults.update(fields)
    return RequestRecord(**defaults)


@dataclass
class LogService:
    """What the fake log service received, and how it should behave."""

    base_url: str = ""
    posts: list[tuple[str, str | None, dict[str, Any]]] = field(default_factory=list)
    fail_first: int = 0  # answer 500 to this many requests first
    hang: bool = False
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def logs(self, path_suffix: str) -> list[dict[str, Any]]:
        return [
            log
            for path, _, body in self.posts
            if path.endswith(path_suffix)
            for log in body["logs"]
        ]
