"""Shared by the console tests: a gateway with admin tokens in front of two loopback fake
upstreams (`a` answers 429 to its one key when asked, `b` always answers), records in SQLite
under tmp_path, and helpers to make traffic and wait for its records."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

CLIENT = "client-token-0123456789"
ADMIN = "admin-token-abcdefghijklmnop"
KEY_A = "sk-a-secret-key-000000-AAAA"
KEY_B = "sk-b-secret-key-111111-BBBB"
MESSAGES = [{"role": "user", "content": "hello console"}]


def console_config(a_url: str, b_url: str, tmp_path: Path, **top: Any) -> dict[str, Any]:
    def provider(url: str, key: str) -> dict[str, Any]:
        return {"kind": "openai", "base_url": url, "api_keys": [key], "timeout": 5.0,
                "connect_timeout": 1.0}  # fmt: skip

    return {
        "gateway_tokens": [CLIENT],
        "admin_tokens": [ADMIN],
        "providers": {"a": provider(a_url, KEY_A), "b": provider(b_url, KEY_B)},
        "models": {
            "m": {"providers": [{"provider": "a"}, {"provider": "b"}]},
            "only-b": {"providers": [{"provider": "b"}]},
        },  # fmt: skip
        "retry": {"cooldown_base_s": 0.3, "cooldown_max_s": 1.0},
        "records": {
            "flush_interval_s": 0.05,
            "sinks": [{"type": "sqlite", "path": str(tmp_path / "records.db")}],
        },
        **top,
    }


async def wait_for(predicate, timeout: float = 10.0, interval: float = 0.1) -> Any:
    """Poll an async predicate until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        found = await predicate()
        if found or time.monotonic() > deadline:
            return found
        await asyncio.sleep(interval)


async def admin_get(gw, path: str, token: str | None = ADMIN) -> tuple[int, Any]:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    async with gw.http().get(path, headers=headers) as resp:
        return resp.status, await resp.json(content_type=None)


async def recorded(gw, count: int, **filters: str) -> list[dict[str, Any]]:
    """Wait until the request log holds at least `count` rows matching `filters`."""
    query = "&".join(f"{k}={v}" for k, v in {"limit": "500", **filters}.items())

    async def enough() -> list[dict[str, Any]] | None:
        status, body = await admin_get(gw, f"/admin/requests?{query}")
        rows = body.get("requests", []) if status == 200 else []
        return rows if len(rows) >= count else None

    return await wait_for(enough) or []


async def failover_request(gw, a) -> str:
    """Chat with `m` until one request went to `a` first (429) and then to `b`: its id."""
    client = gw.openai(CLIENT)
    for _ in range(20):
        raw = await client.chat.completions.with_raw_response.create(model="m", messages=MESSAGES)
        if raw.headers.get("x-apex-attempts") == "2":
            return raw.headers["x-request-id"]
    raise AssertionError(f"no request failed over from a (a saw {len(a.requests)})")


async def story_of(gw, request_id: str) -> dict[str, Any]:
    """Wait until request `request_id` is in the records; its story (the whole record)."""

    async def found() -> dict[str, Any] | None:
        status, body = await admin_get(gw, f"/admin/requests/{request_id}")
        return body if status == 200 else None

    story = await wait_for(found)
    assert story, f"request {request_id} was never recorded"
    return story
