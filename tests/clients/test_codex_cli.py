"""Codex (`@openai/codex`, the real CLI) through the gateway's /v1/responses, headless.

Configured the way the README says: a model provider in `$CODEX_HOME/config.toml` with
`wire_api = "responses"`, `base_url` ending in `/v1` and `env_key` naming the variable that
holds the gateway token. Onto an OpenAI Chat upstream (Responses translated to Chat), a native
Responses upstream (relayed) and an Anthropic one that answers with signed thinking. The upstream
asks for Codex's shell tool; the test checks that the command ran, its output went back upstream
and the final answer reached stdout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from agent_upstream import AgentUpstream, responses_behaviour
from cli_support import require_cli, run_cli
from fakes.responses_upstream import FakeResponsesUpstream

TOKEN = "gw-cli-token-0c4d2a"
MARKER = "APEX_CLI_MARK_91be"

CODEX_CONFIG = """\
model = "coder"
model_provider = "apex"

[model_providers.apex]
name = "Apex AI Proxy"
base_url = "{base_url}/v1"
env_key = "APEX_TOKEN"
wire_api = "responses"
"""


def gateway_config(kind: str, base_url: str, tmp_path: Path) -> dict[str, Any]:
    return {
        "gateway_tokens": [TOKEN],
        "providers": {"agent": {"kind": kind, "base_url": base_url, "api_key": "sk-upstream"}},
        "models": {"coder": {"providers": [{"provider": "agent", "model": "upstream-coder"}]}},
        "responses_store": {"backend": "sqlite", "path": str(tmp_path / "responses.db")},
        "records": {
            "flush_interval_s": 0.05,
            "sinks": [{"type": "jsonl", "path": str(tmp_path / "records.jsonl")}],
        },
    }


def signatures_sent_back(agent: AgentUpstream) -> list[str]:
    """Signatures of the thinking blocks the Anthropic upstream got back in later turns."""
    found = []
    for seen in agent.requests:
        for message in seen.body.get("messages") or []:
            content = message.get("content")
            for block in content if isinstance(content, list) else []:
                if block.get("type") == "thinking":
                    found.append(block.get("signature"))
    return found


@pytest.mark.parametrize("kind", ["openai", "responses", "anthropic"])
async def test_codex_shell_tool_round_trip_through_the_gateway(
    gateway, tmp_path: Path, kind: str
) -> None:
    codex = require_cli("codex")
    # Onto Anthropic the answer starts with signed thinking, which Codex must hand back (as a
    # reasoning item's encrypted_content) for the upstream to see it again with the tool result.
    thinking = "Which command prints the marker?" if kind == "anthropic" else None
    agent = await AgentUpstream(MARKER, thinking=thinking).start()
    native = FakeResponsesUpstream("native")
    native.behaviour = responses_behaviour(agent)
    await native.start()
    try:
        upstream_url = {
            "openai": agent.openai_base_url,
            "responses": native.base_url,
            "anthropic": agent.anthropic_base_url,
        }[kind]
        gw = await gateway(gateway_config(kind, upstream_url, tmp_path))
        codex_home = tmp_path / "home" / ".codex"
        codex_home.mkdir(parents=True)
        (codex_home / "config.toml").write_text(CODEX_CONFIG.format(base_url=gw.base_url))
        env = {"CODEX_HOME": str(codex_home), "APEX_TOKEN": TOKEN}
        # The sandbox needs user namespaces, which containers may lack; the command is an echo.
        argv = [codex, "exec", "--skip-git-repo-check"]
        argv += ["--dangerously-bypass-approvals-and-sandbox", "Print the marker in the shell."]
        run = await run_cli(argv, tmp_path / "home", tmp_path / "work", env)
    finally:
        await native.stop()
        await agent.stop()
    await gw.app.services.recorder.flush()
    records = [
        orjson.loads(line)
        for line in (tmp_path / "records.jsonl").read_bytes().split(b"\n")
        if line
    ]
    assert run.returncode == 0, run.describe()
    assert "done:" in run.stdout and MARKER in run.stdout, run.describe()
    assert any(MARKER in text for text in agent.tool_results()), "tool output never came back"
    assert set(agent.models()) == {"upstream-coder"}
    calls = [r for r in records if r["endpoint"] == "/v1/responses"]
    # No error event after the answer (a large response.completed once got one appended).
    assert len(calls) >= 2, calls
    assert all(r["status"] == 200 and r["error_message"] is None for r in calls), calls
    if kind == "anthropic":
        assert signatures_sent_back(agent) == ["sig-1"], "the thinking signature was lost"
