"""Config builders for the /v1/responses tests (tests/endpoints/ and tests/conversations/).

responses_config(...) a gateway config with a response store under tmp_path
(the `native` fixture, a started FakeResponsesUpstream, is in tests/conftest.py)
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


def anthropic_provider(fake: Any, *keys: str) -> dict[str, Any]:
    return {
        "kind": "anthropic",
        "base_url": fake.base_url,
        "api_keys": list(keys) or ["sk-ant-test-0"],
        "timeout": 5.0,
        "connect_timeout": 1.0,
    }


WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
WEB_SEARCH_TOOL = {"type": "web_search_preview"}


class ToolCallingChatUpstream(FakeUpstream):
    """The shared OpenAI chat fake, plus scripted tool-call answers (`queue_calls`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[list[tuple[str, str]]] = []

    def queue_calls(self, *calls: tuple[str, str]) -> None:
        self.calls.append(list(calls))

    def _tool_calls(self) -> list[dict[str, Any]] | None:
        if not self.calls:
            return None
        return [
            {
                "id": f"call_{len(self.requests)}_{i}",
                "type": "function",
                "function": {"name": name, "arguments": arguments},
            }
            for i, (name, arguments) in enumerate(self.calls.pop(0))
        ]

    def _completion_body(self, record: Any, content: str) -> dict[str, Any]:
        body = super()._completion_body(record, content)
        calls = self._tool_calls()
        if calls:
            body["choices"][0]["message"] = {
                "role": "assistant",
                "content": None,
                "tool_calls": calls,
            }
            body["choices"][0]["finish_reason"] = "tool_calls"
        return body

    async def _stream(self, request, record, *rest):  # type: ignore[override]
        calls = self._tool_calls()
        if not calls:
            return await super()._stream(request, record, *rest)
        import orjson
        from aiohttp import web

        response = web.StreamResponse(status=200, headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        base = {
            "id": "chatcmpl-tools",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": record.model,
        }

        async def send(choices: list, usage: dict | None = None) -> None:
            payload = {**base, "choices": choices}
            if usage is not None:
                payload["usage"] = usage
            await response.write(b"data: " + orjson.dumps(payload) + b"\n\n")

        await send(
            [{"index": 0, "delta": {"role": "assistant", "content": None}, "finish_reason": None}]
        )
        for i, call in enumerate(calls):
            head = {
                "index": i,
                "id": call["id"],
                "type": "function",
                "function": {"name": call["function"]["name"], "arguments": ""},
            }
            await send([{"index": 0, "delta": {"tool_calls": [head]}, "finish_reason": None}])
            args = call["function"]["arguments"]
            for piece in (args[: len(args) // 2], args[len(args) // 2 :]):
                delta = {"tool_calls": [{"index": i, "function": {"arguments": piece}}]}
                await send([{"index": 0, "delta": delta, "finish_reason": None}])
        await send([{"index": 0, "delta": {}, "finish_reason": "tool_calls"}])
        await send([], {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12})
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response
