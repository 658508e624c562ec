"""The real Gemini CLI (`@google/gemini-cli` on npm), headless, through the gateway onto an
OpenAI-compatible loopback fake that makes it run a shell command.

    gemini -p PROMPT --approval-mode yolo -m MODEL      GEMINI_API_KEY = the gateway token,
                                                        GOOGLE_GEMINI_BASE_URL = the gateway,
                                                        API-key auth in $HOME/.gemini/settings.json

The fake answers the first request that offers `run_shell_command` with a call of it, and the
request that carries the command's output with a final answer quoting it. Any other request
(the CLI's own side questions: next speaker, routing, titles) gets a small JSON answer.
Skipped when `gemini` is not on PATH (`npm install -g @google/gemini-cli`). Verified with 0.61.0.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web
from gemini_support import start_fake
from translation_support import CLIENT_TOKEN, PROVIDER_KEY

GEMINI = shutil.which("gemini")
pytestmark = pytest.mark.skipif(
    GEMINI is None, reason="the Gemini CLI is not on PATH: npm install -g @google/gemini-cli"
)
MODEL = "gemini-2.5-pro"  # the name the CLI is told to use; the gateway serves it from the fake
CLI_MODELS = (
    MODEL,
    "gemini-2.5-flash",
    "gemini-2.5-flash-lite",
    "gemini-3-pro-preview",
    "gemini-3-flash-preview",
    "gemini-3.1-pro-preview",
    "gemini-3.1-flash-lite-preview",
)
MARKER = "apex-cli-marker-7f3a"
FINAL = f"The command printed {MARKER}."


class ShellScriptedOpenAI:
    """An OpenAI chat upstream that scripts one shell command and a final answer."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.runner: web.AppRunner | None = None
        self.base_url = ""

    async def start(self) -> ShellScriptedOpenAI:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.chat)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.base_url = f"http://127.0.0.1:{self.runner.addresses[0][1]}/v1"
        return self

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    def answer(self, body: dict) -> dict:
        """The assistant message for `body`: a tool call, the final text or a side answer."""
        tools = [t["function"]["name"] for t in body.get("tools") or []]
        results = [m for m in body["messages"] if m.get("role") == "tool"]
        if results:
            return {"role": "assistant", "content": FINAL}
        if "run_shell_command" in tools:
            arguments = json.dumps({"command": f"echo {MARKER}", "description": "print the marker"})
            call = {"name": "run_shell_command", "arguments": arguments}
            return {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "call_shell_1", "type": "function", "function": call}],
            }
        side = {"next_speaker": "user", "reasoning": "done", "model_choice": "pro", "title": "t"}
        return {"role": "assistant", "content": json.dumps(side)}

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        assert request.headers["authorization"] == f"Bearer {PROVIDER_KEY}"
        self.requests.append(body)
        message = self.answer(body)
        finish = "tool_calls" if message.get("tool_calls") else "stop"
        usage = {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25}
        if not body.get("stream"):
            choice = {"index": 0, "message": message, "finish_reason": finish}
            return web.json_response(
                {
                    "id": "cc-1",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body["model"],
                    "choices": [choice],
                    "usage": usage,
                }
            )
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        base = {
            "id": "cc-1",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": body["model"],
        }

        async def send(delta: dict, finish_reason: str | None = None, **extra: Any) -> None:
            chunk = {
                **base,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
            }
            await response.write(b"data: " + orjson.dumps({**chunk, **extra}) + b"\n\n")

        await send({"role": "assistant", "content": message.get("content") or ""})
        for i, call in enumerate(message.get("tool_calls") or []):
            await send({"tool_calls": [{"index": i, **call}]})
        await send({}, finish)
        await response.write(
            b"data: " + orjson.dumps({**base, "choices": [], "usage": usage}) + b"\n\n"
        )
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response


def cli_home(tmp_path: Path) -> Path:
    """A HOME whose settings select API-key auth (the CLI asks interactively otherwise)."""
    home = tmp_path / "home"
    settings = home / ".gemini" / "settings.json"
    settings.parent.mkdir(parents=True)
    settings.write_text(
        json.dumps({"security": {"auth": {"selectedType": "gemini-api-key"}}}), encoding="utf-8"
    )
    return home


async def run_cli(gw_url: str, home: Path, workdir: Path, prompt: str) -> tuple[int, str, str]:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "GEMINI_API_KEY": CLIENT_TOKEN,
        "GOOGLE_GEMINI_BASE_URL": gw_url,
        "NO_COLOR": "1",
        "CI": "1",
        "GEMINI_CLI_TRUST_WORKSPACE": "true",  # headless runs need a trusted folder (0.61)
    }
    process = await asyncio.create_subprocess_exec(
        GEMINI,
        "-p",
        prompt,
        "--approval-mode",
        "yolo",
        "-m",
        MODEL,
        cwd=workdir,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout=150)
    except TimeoutError:
        process.kill()
        out, err = await process.communicate()
    return process.returncode or 0, out.decode(), err.decode()


async def test_gemini_cli_runs_a_shell_command_through_the_gateway(gateway, tmp_path):
    fake = await ShellScriptedOpenAI().start()
    try:
        config = {
            "gateway_tokens": [CLIENT_TOKEN],
            "providers": {
                "up": {"kind": "openai", "base_url": fake.base_url, "api_keys": [PROVIDER_KEY]}
            },
            # The CLI's side questions name other Gemini models: all go to the same fake.
            "models": {
                name: {"providers": [{"provider": "up", "model": "up-model"}]}
                for name in CLI_MODELS
            },
        }
        gw = await gateway(config)
        workdir = tmp_path / "work"
        workdir.mkdir()
        code, out, err = await run_cli(
            gw.base_url, cli_home(tmp_path), workdir, "Print the marker with a shell command."
        )
    finally:
        await fake.stop()

    assert code == 0, (out, err[-3000:])
    assert FINAL in out, (out, err[-3000:])
    tool_results = [
        m for body in fake.requests for m in body["messages"] if m.get("role") == "tool"
    ]
    assert tool_results, [b["messages"][-1] for b in fake.requests]
    assert MARKER in tool_results[-1]["content"]  # the command's real output came back upstream
    shell = next(
        t["function"]
        for t in fake.requests[0]["tools"]
        if t["function"]["name"] == "run_shell_command"
    )
    assert "command" in shell["parameters"]["properties"]  # the CLI's parametersJsonSchema


def cli_config(base_url: str, kind: str) -> dict:
    return {
        "gateway_tokens": [CLIENT_TOKEN],
        "providers": {"up": {"kind": kind, "base_url": base_url, "api_keys": [PROVIDER_KEY]}},
        # The CLI's side questions may name other Gemini models: all go to the same fake.
        "models": {
            name: {"providers": [{"provider": "up", "model": "up-model"}]} for name in CLI_MODELS
        },
    }


@pytest.mark.parametrize("kind", ["gemini", "anthropic", "responses"])
async def test_gemini_cli_runs_a_shell_command_on_other_upstreams(gateway, tmp_path, kind):
    """The same run over the Gemini fast path and the Anthropic and Responses translations."""
    upstream = await start_fake(kind)
    upstream.calls([("run_shell_command", {"command": f"echo {MARKER}"})])
    upstream.text(FINAL)
    try:
        gw = await gateway(cli_config(upstream.fake.base_url, kind))
        workdir = tmp_path / "work"
        workdir.mkdir()
        code, out, err = await run_cli(
            gw.base_url, cli_home(tmp_path), workdir, "Print the marker with a shell command."
        )
    finally:
        await upstream.fake.stop()

    assert code == 0, (out, err[-3000:])
    assert FINAL in out, (out, err[-3000:])
    first, second = upstream.bodies()
    assert "run_shell_command" in orjson.dumps(first).decode()
    assert f"Output: {MARKER}" in orjson.dumps(second).decode()  # the command's own output
