"""Fixtures for the response stores: every contract test runs against SQLite and Redis.

Redis tests use REDIS_URL (default redis://127.0.0.1:6379) and are skipped when no server
answers. Each test gets its own key prefix and deletes its keys afterwards, so parallel runs
against one Redis never see each other.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis_support import REDIS_URL, redis_skip_reason

from apex_ai_proxy.state.config import ResponsesStoreConfig
from apex_ai_proxy.state.open_store import open_store
from apex_ai_proxy.state.responses_store import ResponseStore

RUN_PREFIX = f"apex-test:{uuid.uuid4().hex}:"


@functools.cache
@dataclass
class StoreBench:
    """Opens stores of one backend and reads back the raw bytes they wrote."""

    backend: str
    make: Callable[..., Awaitable[ResponseStore]]
    raw_bytes: Callable[[], Awaitable[bytes]]


@pytest.fixture(params=["sqlite", "redis"])
async def bench(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreBench]:
    backend = request.param
    if backend == "redis" and (reason := redis_skip_reason()):
        pytest.skip(reason)
    prefix = f"{RUN_PREFIX}{uuid.uuid4().hex}:"
    db_dir = tmp_path / "db"
    opened: list[ResponseStore] = []

    async def make(**overrides: object) -> ResponseStore:
        fields = {"backend": backend, "path": db_dir / "responses.db", "redis_url": REDIS_URL}
        fields["key_prefix"] = prefix
        store = await open_store(ResponsesStoreConfig(**(fields | overrides)))
        opened.append(store)
        return store

    raw = Redis.from_url(REDIS_URL) if backend == "redis" else None

    async def raw_bytes() -> bytes:
        if raw is None:  # the database file and its WAL, as they are on disk
            return b"".join(p.read_bytes() for p in sorted(db_dir.iterdir()))
        keys = [key async for key in raw.scan_iter(match=f"{prefix}*")]
        return b"".join(keys + [v for v in await raw.mget(keys) if v]) if keys else b""

    yield StoreBench(backend, make, raw_bytes)

    for store in opened:
        await store.close()
    if raw is not None:
        keys = [key async for key in raw.scan_iter(match=f"{prefix}*")]
        if keys:
            await raw.delete(*keys)
        await raw.aclose()
