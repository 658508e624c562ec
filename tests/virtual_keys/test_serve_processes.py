"""Virtual keys across real OS processes: two `apex-ai-proxy serve` gateways sharing one SQLite
key store and one Redis, and one `serve --workers 2`. Limits are counted in Redis, revocations
reach every process through the store within the cache TTL."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from vk_serve import known_to, serve, write_config
from vk_support import ADMIN, gateway_config

TTL = 0.3


def config_file(tmp_path: Path, redis_state: dict) -> Path:
    store = {"backend": "sqlite", "path": str(tmp_path / "keys.db")}
    config = gateway_config(store, redis_state, cache_ttl_s=TTL)
    return write_config(tmp_path / "apex.yaml", config)


async def create_key(served, **fields) -> dict:
    status, body = await served.request("POST", "/admin/keys", ADMIN, fields)
    assert status == 201, body
    return body


async def test_rpm_of_a_virtual_key_holds_across_two_server_processes(tmp_path, redis_state):
    path = config_file(tmp_path, redis_state)
    async with serve(tmp_path / "a", path) as a, serve(tmp_path / "b", path) as b:
        key = (await create_key(a, name="shared-rpm", rpm=5))["key"]
        await known_to(a, key, TTL)
        await known_to(b, key, TTL)
        statuses = [await gw.chat(key) for gw in (a, b) * 5]
        assert statuses.count(200) == 5, statuses
        # counted once for both: each on its own would have let its five through (10 × 200)
        assert statuses == [200] * 5 + [429] * 5, statuses


async def test_revoked_key_is_refused_by_both_server_processes_within_ttl(tmp_path, redis_state):
    path = config_file(tmp_path, redis_state)
    async with serve(tmp_path / "a", path) as a, serve(tmp_path / "b", path) as b:
        created = await create_key(a, name="revoke-me")
        key = created["key"]
        await known_to(b, key, TTL)
        assert await a.chat(key) == 200 and await b.chat(key) == 200
        status, _ = await a.request("DELETE", f"/admin/keys/{created['id']}", ADMIN)
        assert status == 200
        revoked_at = time.monotonic()
        assert await a.chat(key) == 401  # the process that revoked it: at once
        while await b.chat(key) != 401:
            assert time.monotonic() - revoked_at < 10, "the other process kept the key"
            await asyncio.sleep(0.02)
        # one TTL, plus a store read and the wake-ups of two processes on a loaded machine
        assert time.monotonic() - revoked_at < TTL + 1.5


async def test_rpm_of_a_virtual_key_holds_across_two_workers(tmp_path, redis_state):
    path = config_file(tmp_path, redis_state)
    async with serve(tmp_path / "w", path, "--workers", "2") as served:
        key = (await create_key(served, name="workers-rpm", rpm=6))["key"]
        await known_to(served, key, TTL)  # by every worker: each has its own cache
        # a connection each: both workers answer (counted per worker, 12 would pass)
        statuses = [await served.chat(key) for _ in range(14)]
        assert statuses == [200] * 6 + [429] * 8, statuses
