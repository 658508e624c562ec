"""Config builders, a scriptable OpenAI chat fake and SDK clients for the translation tests.

    ScriptedChat               the shared OpenAI fake plus queued assistant turns (tool calls,
                               finish reasons, usage) via `push_turn`
    one_model(kind, fake)      a gateway config serving the alias MODEL from one fake upstream
    anthropic_client(gw)       an `anthropic.AsyncAnthropic` aimed at the gateway (max_retries=0)
    tool_history(*results)     an Anthropic conversation that called two tools, then their results

Every provider uses the provider key PROVIDER_KEY; clients use CLIENT_TOKEN, so a test can tell
which credential reached an upstream.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from itertools import zip_longest
from typing import Any

import anthropic
import orjson
from aiohttp import web
from fakes.openai_upstream import FakeUpstream, RecordedRequest, split_tokens

MODEL = "translated"
CLIENT_TOKEN = "client-token"
PROVIDER_KEY = "sk-provider-secret-0"
FAST_RETRY = {"cooldown_base_s": 0.3, "cooldown_max_s": 1.0, "auth_failure_cooldown_s": 3600.0}

WEATHER_TOOL_ANTHROPIC = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
NOW_TOOL_ANTHROPIC = {
    "name": "now",
    "description": "The current time",
    "input_schema": {"type": "object", "properties": {}},
}
WEATHER_TOOL_OPENAI = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": WEATHER_TOOL_ANTHROPIC["input_schema"],
    },
}
NOW_TOOL_OPENAI = {
    "type": "function",
    "function": {
        "name": "now",
        "description": "The current time",
        "parameters": {"type": "object", "properties": {}},
    },
}

# A 1x1 transparent PNG.
PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
IMAGE_URL = "https://images.example.com/cat.png"
HELLO = [{"role": "user", "content": "hello there"}]


def provider(kind: str, fake: Any, **extra: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "kind": kind,
        "base_url": fake.base_url,
        "api_keys": [PROVIDER_KEY],
        "timeout": 5.0,
        "connect_timeout": 1.0,
    }
    settings.update(extra)
    return settings


def one_model(kind: str, fake: Any, upstream_model: str = "up-model", **extra: Any) -> dict:
    """Alias MODEL served by one provider `up` of `kind`; the gateway requires CLIENT_TOKEN."""
    return {
        "gateway_tokens": [CLIENT_TOKEN],
        "providers": {"up": provider(kind, fake, **extra)},
        "models": {MODEL: {"providers": [{"provider": "up", "model": upstream_model}]}},
        "retry": {**FAST_RETRY, "max_attempts": 1},
    }


def anthropic_client(gw: Any, token: str = CLIENT_TOKEN, **kwargs: Any) -> anthropic.AsyncAnthropic:
    kwargs.setdefault("max_retries", 0)
    kwargs.setdefault("timeout", 10.0)
    client = anthropic.AsyncAnthropic(base_url=gw.base_url, api_key=token, **kwargs)
    gw._clients.append(client)  # closed with the gateway's other clients
    return client


def tool_history(*results: dict, text: str | None = None) -> list[dict]:
    """A turn that called get_weather (id toolu_a) and now, then the user's tool results."""
    calls = [
        {"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "toolu_b", "name": "now", "input": {}},
    ]
    assistant = ([{"type": "text", "text": text}] if text else []) + calls
    return [
        {"role": "user", "content": "Weather in Paris and the time?"},
        {"role": "assistant", "content": assistant},
        {"role": "user", "content": list(results)},
    ]


# --- a scriptable OpenAI chat upstream --------------------------------------------------------


@dataclass
class Turn:
    content: str | None = None
    tool_calls: list[tuple[str, str]] = field(default_factory=list)  # (name, JSON arguments)
    finish_reason: str = "stop"
    usage: dict[str, int] = field(
        default_factory=lambda: {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}
    )
    interleaved: bool = False  # streamed: the calls' chunks round-robin, not one call after another
    finish_after: asyncio.Event | None = None  # streamed: the finish_reason chunk waits for it


class ScriptedChat(FakeUpstream):
    """The shared OpenAI fake; a queued `Turn` replaces the default answer of the next request."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.turns: list[Turn] = []

    def push_turn(self, turn: Turn) -> Turn:
        self.turns.append(turn)
        return turn

    def _message(self, turn: Turn) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": turn.content}
        if turn.tool_calls:
            message["tool_calls"] = [
                {"id": f"call_{i}", "type": "function", "function": {"name": n, "arguments": a}}
                for i, (n, a) in enumerate(turn.tool_calls)
            ]
        return message

    def _completion_body(self, record: RecordedRequest, content: str) -> dict[str, Any]:
        body = super()._completion_body(record, content)
        if self.turns:
            turn = self.turns.pop(0)
            body["choices"][0]["message"] = self._message(turn)
            body["choices"][0]["finish_reason"] = turn.finish_reason
            body["usage"] = turn.usage
        return body

    async def _stream(self, request, record, *rest):  # type: ignore[override]
        if not self.turns:
            return await super()._stream(request, record, *rest)
        turn = self.turns.pop(0)
        response = web.StreamResponse(status=200, headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        base = {"id": "chatcmpl-scripted", "object": "chat.completion.chunk"}
        base.update(created=int(time.time()), model=record.model)

        async def send(choices: list, usage: dict | None = None) -> None:
            payload = {**base, "choices": choices}
            if usage is not None:
                payload["usage"] = usage
            await response.write(b"data: " + orjson.dumps(payload) + b"\n\n")

        def delta(d: dict, finish: str | None = None) -> list:
            return [{"index": 0, "delta": d, "finish_reason": finish}]

        await send(delta({"role": "assistant", "content": ""}))
        for token in split_tokens(turn.content) if turn.content else []:
            await send(delta({"content": token}))
        for call in _tool_call_chunks(turn):
            await send(delta({"tool_calls": [call]}))
        if turn.finish_after is not None:
            await turn.finish_after.wait()
        await send(delta({}, turn.finish_reason))
        options = record.body.get("stream_options") or {}
        if options.get("include_usage"):
            await send([], turn.usage)
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response


def _tool_call_chunks(turn: Turn) -> list[dict]:
    """Each call's head, then its arguments in two pieces. One call after the other, or with
    `turn.interleaved` round-robin over the calls: every head, every first piece, every second."""
    per_call = []
    for i, (name, args) in enumerate(turn.tool_calls):
        head = {"index": i, "id": f"call_{i}", "type": "function"}
        head["function"] = {"name": name, "arguments": ""}
        pieces = (args[: len(args) // 2], args[len(args) // 2 :])
        per_call.append([head] + [{"index": i, "function": {"arguments": p}} for p in pieces if p])
    if not turn.interleaved:
        return [chunk for chunks in per_call for chunk in chunks]
    rounds = zip_longest(*per_call)
    return [chunk for chunks in rounds for chunk in chunks if chunk is not None]
