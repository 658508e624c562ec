"""One gateway in front of one careless upstream, reached as three providers (OpenAI, Anthropic,
Responses kinds, each with its own key), and the three client endpoints; records (raw capture
on) and the response store under tmp_path; and `everything_written`, the bytes a leak could
hide in."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import orjson
from fakes.careless_upstream import CarelessUpstream

TOKEN = "gw-token-secrets-0123456789"
KEYS = {
    "openai": "sk-proj/openai-KEY-0123456789",
    "anthropic": "sk-ant-api03/anthropic-KEY-98765",
    "responses": "sk-resp/responses-KEY-5555555",
}
KINDS = {"openai": "openai", "anthropic": "anthropic", "responses": "responses"}
# path, body builder (model → request body)
ENDPOINTS: dict[str, tuple[str, Any]] = {
    "chat": (
        "/v1/chat/completions",
        lambda model, stream: {
            "model": model,
            "stream": stream,
            "messages": [{"role": "user", "content": "hi"}],
        },
    ),
    "messages": (
        "/v1/messages",
        lambda model, stream: {
            "model": model,
            "stream": stream,
            "max_tokens": 32,
            "messages": [{"role": "user", "content": "hi"}],
        },
    ),
    "responses": (
        "/v1/responses",
        lambda model, stream: {"model": model, "stream": stream, "input": "hi"},
    ),
}
# The upstream dialect that needs no translation for each client endpoint.
SAME_DIALECT = {"chat": "openai", "messages": "anthropic", "responses": "responses"}


def config(upstream: CarelessUpstream, tmp_path: Path) -> dict[str, Any]:
    return {
        "gateway_tokens": [TOKEN],
        "providers": {
            name: {
                "kind": KINDS[name],
                "base_url": upstream.base_url,
                "api_keys": [key],
                "timeout": 5.0,
                "connect_timeout": 1.0,
            }
            for name, key in KEYS.items()
        },
        "models": {f"m-{name}": {"providers": [{"provider": name}]} for name in KEYS},
        # a rejected key comes back for the next request at once
        "retry": {
            "cooldown_base_s": 0.001,
            "cooldown_max_s": 0.001,
            "auth_failure_cooldown_s": 0.001,
        },
        "records": {
            "enabled": True,
            "raw": True,
            "flush_interval_s": 0.05,
            "sinks": [
                {"type": "sqlite", "path": str(tmp_path / "records.db")},
                {"type": "jsonl", "path": str(tmp_path / "records.jsonl")},
            ],
        },
        "responses_store": {"backend": "sqlite", "path": str(tmp_path / "responses.db")},
    }


async def send(gw: Any, endpoint: str, provider: str, stream: bool = False) -> tuple[int, bytes]:
    """POST to a client endpoint for `provider`'s model; the status and the raw body bytes."""
    path, build = ENDPOINTS[endpoint]
    session = gw.http()
    async with session.post(
        path,
        data=orjson.dumps(build(f"m-{provider}", stream)),
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    ) as response:
        return response.status, await response.read()


async def everything_written(gw: Any, tmp_path: Path) -> dict[str, bytes]:
    """The bytes of every file records and stored responses went to (SQLite files with their
    WAL), after the recorder wrote all it holds."""
    await gw.app.services.recorder.flush()
    found = {}
    for path in sorted(tmp_path.iterdir()):
        if path.name.startswith(("records", "responses")):
            found[path.name] = path.read_bytes()
        if path.suffix == ".db":  # rows too: a long row spills over pages the file splits
            found[f"{path.name} rows"] = _rows_text(path)
    return found


def _rows_text(path: Path) -> bytes:
    conn = sqlite3.connect(path)
    try:
        tables = [
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
        ]
        rows = [repr(conn.execute(f"SELECT * FROM {table}").fetchall()) for table in tables]
    finally:
        conn.close()
    return "\n".join(rows).encode()
