"""Shared by the gateway-level records tests: configs whose records land under tmp_path, and
reading back what the sinks wrote."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import orjson

TOKEN = "gw-token-abcdef123456"  # gateway token the clients use
PRICE = {"input": 2.0, "output": 8.0}  # USD per million tokens
MESSAGES = [{"role": "user", "content": "count these five words"}]


def records_section(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    """Records into tmp_path (never the default ./apex-records.db): one sqlite, one jsonl sink."""
    section: dict[str, Any] = {
        "enabled": True,
        "flush_interval_s": 0.05,
        "sinks": [
            {"type": "sqlite", "path": str(tmp_path / "records.db")},
            {"type": "jsonl", "path": str(tmp_path / "records.jsonl")},
        ],
    }
    section.update(extra)
    return section


def provider(base_url: str, *keys: str, **extra: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {
        "kind": "openai",
        "base_url": base_url,
        "api_keys": list(keys),
        "timeout": 5.0,
        "connect_timeout": 1.0,
    }
    settings.update(extra)
    return settings


async def records(gw: Any, tmp_path: Path) -> list[dict[str, Any]]:
    """Every record the gateway wrote so far, from the JSONL sink (raw capture included)."""
    await gw.app.services.recorder.flush()
    path = tmp_path / "records.jsonl"
    if not path.exists():
        return []
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line]


def sqlite_rows(tmp_path: Path, sql: str = "SELECT * FROM records ORDER BY id") -> list[Any]:
    conn = sqlite3.connect(tmp_path / "records.db")
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def cost(prompt: int, completion: int, price: dict[str, float] = PRICE) -> float:
    return (prompt * price["input"] + completion * price["output"]) / 1_000_000
