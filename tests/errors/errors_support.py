"""Gateways in front of an upstream whose stream breaks mid-way, one per upstream dialect.

broken(kind)   starts the fake of `kind` ("openai", "anthropic" or "responses") with one
               stream queued that dies after a few events, and returns the provider entry
gateway_for(gateway, provider, tmp_path)   a gateway serving model "m" from that provider
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fakes.anthropic_upstream import FakeAnthropic
from fakes.openai_upstream import BreakStream, FakeUpstream
from fakes.responses_upstream import Break, FakeResponsesUpstream

RETRY = {"cooldown_base_s": 0.3, "cooldown_max_s": 1.0, "auth_failure_cooldown_s": 3600.0}


def provider(kind: str, base_url: str) -> dict[str, Any]:
    return {
        "kind": kind,
        "base_url": base_url,
        "api_keys": [f"sk-{kind}-test-0"],
        "timeout": 5.0,
        "connect_timeout": 1.0,
    }


class BrokenUpstreams:
    """Started fakes, each with one broken stream queued; stopped by the fixture."""

    def __init__(self) -> None:
        self.started: list[Any] = []

    async def __call__(self, kind: str) -> dict[str, Any]:
        if kind == "openai":
            chat = await FakeUpstream("chat").start()
            chat.queue(BreakStream(after=3))
            self.started.append(chat)
            return provider("openai", chat.base_url)
        if kind == "anthropic":
            claude = await FakeAnthropic().start()
            claude.push_break("partial answer here")
            self.started.append(claude)
            return provider("anthropic", claude.base_url)
        native = await FakeResponsesUpstream("native").start()
        native.queue(Break(after=6))
        self.started.append(native)
        return provider("responses", native.base_url)

    async def stop(self) -> None:
        for fake in self.started:
            await fake.stop()


async def gateway_for(gateway, entry: dict[str, Any], tmp_path: Path, name: str):
    return await gateway(
        {
            "providers": {name: entry},
            "models": {"m": {"providers": [{"provider": name}]}},
            "retry": RETRY,
            "responses_store": {"backend": "sqlite", "path": str(tmp_path / f"{name}.db")},
        }
    )
