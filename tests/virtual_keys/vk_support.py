"""Virtual-key tests: a store per backend, a Redis prefix per test, gateways that share them.

store_config       {"backend": "sqlite", …} in tmp_path, or Postgres at 127.0.0.1:5432
                   (database `test`, else `postgres`; trust auth) with a table prefix of its
                   own, dropped afterwards; Postgres is skipped with the reason when none
                   answers
redis_state        a `state:` section on the shared Redis (REDIS_URL) with a prefix of its
                   own, deleted afterwards; skipped with the reason when none answers
gateway_config()   gateway tokens, admin token, an echo provider priced at $1 per token
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis
from redis_support import REDIS_URL, redis_skip_reason

PG_DATABASES = ("test", "postgres")
CLIENT = "client-token-0123456789"
ADMIN = "admin-token-abcdefghij"


@functools.cache
@functools.cache
def postgres_dsn() -> tuple[str | None, str]:
    """(dsn, "") for the first database that answers, or (None, why not)."""
    import asyncpg

    async def connect(dsn: str) -> None:
        conn = await asyncpg.connect(dsn, timeout=2)
        await conn.close()

    def probe(dsn: str) -> None:  # in a thread of its own: the tests' loop may be running
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, connect(dsn)).result()

    env = os.environ.get("APEX_TEST_POSTGRES_DSN")
    candidates = (
        [env] if env else [f"postgresql://postgres@127.0.0.1:5432/{db}" for db in PG_DATABASES]
    )
    reasons = []
    for dsn in candidates:
        try:
            probe(dsn)
        except Exception as exc:  # any failure: the reason goes into the skip message
            reasons.append(f"{dsn.rsplit('/', 1)[-1]}: {type(exc).__name__}")
            continue
        return dsn, ""
    return None, "no Postgres reachable at 127.0.0.1:5432 (" + "; ".join(reasons) + ")"


def unique_prefix() -> str:
    return "t" + uuid.uuid4().hex[:10] + "_"


@pytest.fixture(params=["sqlite", "postgres"])
async def store_config(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[dict]:
    if request.param == "sqlite":
        yield {"backend": "sqlite", "path": str(tmp_path / "keys.db")}
        return
    dsn, reason = postgres_dsn()
    if dsn is None:
        pytest.skip(reason)
    config = {"backend": "postgres", "dsn": dsn, "table_prefix": unique_prefix()}
    yield config
    await drop_tables(config)


async def drop_tables(config: dict) -> None:
    from apex_ai_proxy.virtualkeys.backend import open_store
    from apex_ai_proxy.virtualkeys.config import PostgresStoreConfig

    store = open_store(PostgresStoreConfig(**config))
    try:
        await store.delete_all()
    finally:
        await store.close()


@pytest.fixture
def redis_state() -> Any:
    if reason := redis_skip_reason():
        pytest.skip(reason)
    prefix = f"apex:test:{uuid.uuid4().hex[:12]}:"
    yield {"backend": "redis", "redis_url": REDIS_URL, "key_prefix": prefix}
    client = redis.Redis.from_url(REDIS_URL)
    try:
        for key in client.scan_iter(match=prefix + "*"):
            client.delete(key)
    finally:
        client.close()


def gateway_config(store: dict, state: dict | None = None, **virtual: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "gateway_tokens": [CLIENT],
        "admin_tokens": [ADMIN],
        "providers": {
            # $1 per input and per output token: budgets in whole dollars
            "up": {"kind": "echo", "price": {"input": 1_000_000, "output": 1_000_000}},
        },
        "models": {
            "m1": {"providers": [{"provider": "up", "model": "echo"}]},
            "m2": {"providers": [{"provider": "up", "model": "echo"}]},
        },
        "virtual_keys": {"store": store, **virtual},
    }
    if state is not None:
        config["state"] = state
    return config


def admin_headers() -> dict[str, str]:
    return {"authorization": f"Bearer {ADMIN}"}


async def create_key(gw: Any, **fields: Any) -> dict:
    async with gw.http().post("/admin/keys", json=fields, headers=admin_headers()) as resp:
        body = await resp.json(content_type=None)
        assert resp.status == 201, body
        return body


async def chat(gw: Any, key: str, model: str = "m1", stream: bool = False, **extra: Any) -> Any:
    """(status, headers, body) of one chat request with `key`."""
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], **extra}
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    headers = {"authorization": f"Bearer {key}"}
    async with gw.http().post("/v1/chat/completions", json=body, headers=headers) as resp:
        text = await resp.text()
        return resp.status, resp.headers, text
