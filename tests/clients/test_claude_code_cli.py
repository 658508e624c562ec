"""Claude Code (`@anthropic-ai/claude-code`, the real CLI) through the gateway, headless.

It is pointed at the gateway the way the README says: `ANTHROPIC_BASE_URL` without `/v1`, the
gateway token in `ANTHROPIC_AUTH_TOKEN`, and `model_mapping` from the `claude-*` names it sends
to a configured model. The upstream asks for its Bash tool; the test checks that the tool ran,
its output went back upstream and the final answer reached the CLI's stdout. Skipped when the
CLI is not installed (see cli_support).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from agent_upstream import AgentUpstream
from cli_support import require_cli, run_cli

TOKEN = "gw-cli-token-5b1e9c"
MARKER = "APEX_CLI_MARK_7f3a"
# The names Claude Code 2.1.197 sends: its default (main) model, `--model sonnet`, and the
# haiku model it uses as small/fast (`--model haiku`). The README's mapping lists the same.
CLAUDE_MODELS = ["claude-opus-4-8", "claude-sonnet-5", "claude-haiku-4-5-20251001"]


def gateway_config(agent: AgentUpstream, kind: str, tmp_path: Path) -> dict[str, Any]:
    base_url = agent.openai_base_url if kind == "openai" else agent.anthropic_base_url
    return {
        "gateway_tokens": [TOKEN],
        "providers": {"agent": {"kind": kind, "base_url": base_url, "api_key": "sk-upstream"}},
        "models": {"coder": {"providers": [{"provider": "agent", "model": "upstream-coder"}]}},
        "model_mapping": {name: "coder" for name in CLAUDE_MODELS},
        "records": {
            "flush_interval_s": 0.05,
            "sinks": [{"type": "jsonl", "path": str(tmp_path / "records.jsonl")}],
        },
    }


async def model_records(gw: Any, tmp_path: Path) -> list[dict[str, Any]]:
    await gw.app.services.recorder.flush()
    path = tmp_path / "records.jsonl"
    lines = path.read_bytes().splitlines() if path.exists() else []  # none: it never called
    return [r for r in map(orjson.loads, lines) if r["endpoint"].startswith("/v1/messages")]


@pytest.mark.parametrize(
    ("kind", "flags", "sent"),
    [
        ("openai", [], "claude-opus-4-8"),  # translated: Anthropic Messages -> OpenAI Chat
        ("anthropic", ["--model", "haiku"], "claude-haiku-4-5-20251001"),  # same dialect
    ],
)
async def test_claude_code_bash_tool_round_trip_through_the_gateway(
    gateway, tmp_path: Path, kind: str, flags: list[str], sent: str
) -> None:
    claude = require_cli("claude")
    agent = await AgentUpstream(MARKER).start()
    try:
        gw = await gateway(gateway_config(agent, kind, tmp_path))
        env = {"ANTHROPIC_BASE_URL": gw.base_url, "ANTHROPIC_AUTH_TOKEN": TOKEN}
        argv = [claude, "-p", "Print the marker with Bash.", "--allowedTools", "Bash", *flags]
        run = await run_cli(argv, tmp_path / "home", tmp_path / "work", env)
    finally:
        await agent.stop()
    records = await model_records(gw, tmp_path)
    asked = sorted({r["requested_model"] for r in records})
    assert run.returncode == 0, f"models asked for: {asked}\n{run.describe()}"
    assert f"done: {MARKER}" in run.stdout, run.describe()
    assert any(MARKER in text for text in agent.tool_results()), "tool output never came back"
    assert set(agent.models()) == {"upstream-coder"}
    assert asked == [sent], "Claude Code sent other model names than the README maps"
    assert all(r["status"] == 200 and r["error_message"] is None for r in records), records
    assert all(r["mapped_model"] == "coder" for r in records)
