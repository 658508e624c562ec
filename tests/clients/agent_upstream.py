"""A loopback upstream that plays an agent's model for real coding CLIs, in two dialects.

A CLI (Claude Code, Codex, Gemini CLI) sends requests with its shell tool declared. This upstream
answers the first such request with a call of that tool running `echo <marker>`; once the tool's
result is in the conversation it answers ``done: <the result's text>``, so a test sees the whole
round trip: the call reached the CLI, the CLI ran it, the output came back upstream, the final
answer reached the CLI. Requests without a shell tool (titles, summaries, quota probes) get "ok".

    POST /v1/chat/completions   OpenAI Chat Completions, stream or not (tool calls streamed in
                                two argument pieces, usage when asked)
    POST /v1/messages           Anthropic Messages, through `FakeAnthropic`'s own encoders

Every request body is kept in `requests` (path, model, JSON) before it is answered. For a native
Responses upstream, `responses_behaviour(agent)` makes a `FakeResponsesUpstream` play the same part.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web
from fakes.anthropic_upstream import Canned, FakeAnthropic
from fakes.responses_upstream import Call, Recorded, Reply, Text

# Shell tools by name, and how each wants its command: the three CLIs name theirs differently.
SHELL_TOOLS: dict[str, Any] = {
    "Bash": lambda cmd: {"command": cmd, "description": "Print the marker"},  # Claude Code
    "shell": lambda cmd: {"command": ["bash", "-lc", cmd]},  # Codex (older)
    "shell_command": lambda cmd: {"command": cmd},  # Codex
    "exec_command": lambda cmd: {"cmd": cmd},  # Codex (unified exec)
    "run_shell_command": lambda cmd: {"command": cmd},  # Gemini CLI
}


@dataclass
class Seen:
    path: str
    model: str | None
    body: dict[str, Any]


@dataclass
class Decision:
    text: str | None = None
    tool: str | None = None
    arguments: dict[str, Any] | None = None


def tool_names_chat(body: dict[str, Any]) -> list[str]:
    names = []
    for tool in body.get("tools") or []:
        function = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(function, dict) and isinstance(function.get("name"), str):
            names.append(function["name"])
    return names


def tool_names_anthropic(body: dict[str, Any]) -> list[str]:
    return [t["name"] for t in body.get("tools") or [] if isinstance(t, dict) and "name" in t]


def tool_result_chat(body: dict[str, Any]) -> str | None:
    for message in body.get("messages") or []:
        if isinstance(message, dict) and message.get("role") == "tool":
            return _text_of(message.get("content"))
    return None


def tool_result_anthropic(body: dict[str, Any]) -> str | None:
    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        for block in content if isinstance(content, list) else []:
            if isinstance(block, dict) and block.get("type") == "tool_result":
                return _text_of(block.get("content"))
    return None


def tool_names_responses(body: dict[str, Any]) -> list[str]:
    tools = body.get("tools") or []
    return [t["name"] for t in tools if isinstance(t, dict) and isinstance(t.get("name"), str)]


def tool_result_responses(body: dict[str, Any]) -> str | None:
    items = body.get("input")
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and item.get("type") == "function_call_output":
            return _text_of(item.get("output"))
    return None


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


class AgentUpstream:
    def __init__(self, marker: str, thinking: str | None = None) -> None:
        self.marker = marker
        self.thinking = thinking  # also answer with reasoning (and an Anthropic signature)
        self.requests: list[Seen] = []
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._anthropic = FakeAnthropic()  # used only for its wire encoders

    @property
    def openai_base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def anthropic_base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def models(self) -> list[str | None]:
        return [seen.model for seen in self.requests]

    def tool_results(self) -> list[str]:
        found = [
            tool_result_chat(s.body)
            or tool_result_anthropic(s.body)
            or tool_result_responses(s.body)
            for s in self.requests
        ]
        return [text for text in found if text]

    async def start(self) -> AgentUpstream:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/messages", self._messages)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def decide(self, tools: list[str], result: str | None) -> Decision:
        shell = next((name for name in tools if name in SHELL_TOOLS), None)
        if shell is None:
            return Decision(text="ok")
        if result is not None:
            return Decision(text=f"done: {result.strip()}")
        return Decision(tool=shell, arguments=SHELL_TOOLS[shell](f"echo {self.marker}"))

    async def _read(self, request: web.Request) -> dict[str, Any]:
        body = orjson.loads(await request.read())
        self.requests.append(Seen(request.path, body.get("model"), body))
        return body

    # --- OpenAI Chat ---------------------------------------------------------------------------

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await self._read(request)
        decision = self.decide(tool_names_chat(body), tool_result_chat(body))
        n = len(self.requests)
        message: dict[str, Any] = {"role": "assistant", "content": decision.text}
        if self.thinking:
            message["reasoning_content"] = self.thinking
        finish = "stop"
        if decision.tool is not None:
            arguments = orjson.dumps(decision.arguments).decode()
            message["tool_calls"] = [
                {
                    "id": f"call_{n}",
                    "type": "function",
                    "function": {"name": decision.tool, "arguments": arguments},
                }
            ]
            finish = "tool_calls"
        usage = {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25}
        base = {"id": f"chatcmpl-{n}", "created": int(time.time()), "model": body.get("model")}
        if not body.get("stream"):
            choice = {"index": 0, "message": message, "finish_reason": finish}
            payload = {**base, "object": "chat.completion", "choices": [choice], "usage": usage}
            return web.Response(body=orjson.dumps(payload), content_type="application/json")
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        chunk = {**base, "object": "chat.completion.chunk"}

        async def send(delta: dict[str, Any], reason: str | None = None) -> None:
            choice = {"index": 0, "delta": delta, "finish_reason": reason}
            await response.write(b"data: " + orjson.dumps({**chunk, "choices": [choice]}) + b"\n\n")

        await send({"role": "assistant", "content": ""})
        if self.thinking:
            await send({"reasoning_content": self.thinking})
        if decision.text:
            await send({"content": decision.text})
        for call in message.get("tool_calls", []):
            head = {**call, "function": {"name": call["function"]["name"], "arguments": ""}}
            await send({"tool_calls": [{"index": 0, **head}]})
            arguments = call["function"]["arguments"]
            half = len(arguments) // 2
            for piece in (arguments[:half], arguments[half:]):
                await send({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
        await send({}, finish)
        options = body.get("stream_options")
        if isinstance(options, dict) and options.get("include_usage"):
            tail = {**chunk, "choices": [], "usage": usage}
            await response.write(b"data: " + orjson.dumps(tail) + b"\n\n")
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    # --- Anthropic Messages --------------------------------------------------------------------

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        body = await self._read(request)
        decision = self.decide(tool_names_anthropic(body), tool_result_anthropic(body))
        model = str(body.get("model"))
        blocks: list[dict[str, Any]] = []
        if self.thinking:
            signature = f"sig-{len(self.requests)}"
            blocks.append({"type": "thinking", "thinking": self.thinking, "signature": signature})
        if decision.tool is not None:
            block = {
                "type": "tool_use",
                "id": f"toolu_{len(self.requests):02d}",
                "name": decision.tool,
                "input": decision.arguments,
            }
            canned = Canned([*blocks, block], stop_reason="tool_use", model=model)
        else:
            text = {"type": "text", "text": decision.text or ""}
            canned = Canned([*blocks, text], model=model)
        canned.id = f"msg_{len(self.requests)}"
        if not body.get("stream"):
            return web.json_response(self._anthropic.message(canned))
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for frame in self._anthropic.stream_frames(canned):
            await response.write(frame)
        await response.write_eof()
        return response


def responses_behaviour(agent: AgentUpstream) -> Callable[[Recorded], Reply]:
    """A `FakeResponsesUpstream.behaviour` that decides like `agent` and records into it."""

    def behave(record: Recorded) -> Reply:
        body = record.body
        agent.requests.append(Seen(record.path, body.get("model"), body))
        decision = agent.decide(tool_names_responses(body), tool_result_responses(body))
        if decision.tool is not None:
            return Reply(Call(decision.tool, orjson.dumps(decision.arguments).decode()))
        return Reply(Text(decision.text))

    return behave
