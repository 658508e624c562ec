"""Config builders and small helpers shared by the gateway tests (routing, dispatch, cli, http, …).

Test configs use short timeouts and cooldowns so the gateway tests stay fast; where a test
depends on a number it passes it explicitly.
"""

from __future__ import annotations

import socket
from typing import Any

from fakes.openai_upstream import FakeUpstream, RecordedRequest

MESSAGES = [{"role": "user", "content": "ping from the test"}]
AZURE_VERSION = "2024-06-01"

# Cooldowns short enough to wait out in a test, and different from each other so a test can
# tell which one was applied.
FAST_RETRY = {"cooldown_base_s": 0.3, "cooldown_max_s": 1.0, "auth_failure_cooldown_s": 3600.0}


def openai_provider(fake: FakeUpstream, *keys: str, **extra: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "kind": "openai",
        "base_url": fake.base_url,
        "api_keys": list(keys) or [f"sk-{fake.name}-0"],
        "timeout": 3.0,
        "connect_timeout": 1.0,
    }
    settings.update(extra)
    return settings


def azure_provider(fake: FakeUpstream, *keys: str, **extra: Any) -> dict[str, Any]:
    settings = openai_provider(fake, *keys, **extra)
    settings.update(kind="azure", base_url=fake.root_url, api_version=AZURE_VERSION)
    settings.update(extra)
    return settings


def dead_provider(*keys: str) -> dict[str, Any]:
    """An OpenAI-compatible provider whose port has nothing listening: connection refused."""
    return {
        "kind": "openai",
        "base_url": f"http://127.0.0.1:{closed_port()}/v1",
        "api_keys": list(keys) or ["sk-dead-0"],
        "timeout": 3.0,
        "connect_timeout": 1.0,
    }


def model(*entries: dict[str, Any] | str, strategy: str = "weighted") -> dict[str, Any]:
    providers = [{"provider": e} if isinstance(e, str) else e for e in entries]
    return {"strategy": strategy, "providers": providers}


def config(providers: dict[str, Any], models: dict[str, Any], **top: Any) -> dict[str, Any]:
    retry = {**FAST_RETRY, **top.pop("retry", {})}
    return {"providers": providers, "models": models, "retry": retry, **top}


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def by_arrival(*fakes: FakeUpstream) -> list[tuple[str, RecordedRequest]]:
    """Every request the fakes received, as (fake name, request), in arrival order."""
    merged = [(fake.name, req) for fake in fakes for req in fake.requests]
    return sorted(merged, key=lambda pair: pair[1].at)


async def chat(client, model_name: str, **kwargs: Any):
    """A non-streamed chat completion; returns (completion, response headers)."""
    raw = await client.chat.completions.with_raw_response.create(
        model=model_name, messages=kwargs.pop("messages", MESSAGES), **kwargs
    )
    return raw.parse(), raw.headers


async def stream_text(client, model_name: str, **kwargs: Any) -> tuple[str, list[Any], Any]:
    """A streamed chat completion read to the end; returns (text, chunks, response headers)."""
    raw = await client.chat.completions.with_raw_response.create(
        model=model_name, messages=kwargs.pop("messages", MESSAGES), stream=True, **kwargs
    )
    stream = raw.parse()
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    return text, chunks, raw.headers
