"""Ledgers for the key-pool tests: every contract test runs on the local and the Redis ledger.

Redis tests use REDIS_URL (default redis://127.0.0.1:6379) and are skipped, with the reason,
when no server answers. Each test has its own key prefix and deletes its keys afterwards.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from redis.asyncio import Redis
from redis_support import REDIS_URL, redis_skip_reason

from apex_ai_proxy.keypool.ledger import LocalLedger
from apex_ai_proxy.keypool.redis_ledger import RedisLedger
from apex_ai_proxy.keypool.shared_ledger import SharedLedger, SharedTable
from apex_ai_proxy.keypool.state import Policy

LedgerFactory = Callable[..., Awaitable[LocalLedger | RedisLedger]]


@contextlib.asynccontextmanager
async def _redis_factory() -> AsyncIterator[LedgerFactory]:
    """Makes Redis ledgers sharing one prefix of this test alone (replicas of one gateway);
    closes them and deletes their keys afterwards."""
    if reason := redis_skip_reason():
        pytest.skip(reason)
    prefix = f"apex-test:keypool:{uuid.uuid4().hex}:"
    opened: list[RedisLedger] = []

    async def make(policy: Policy | None = None) -> RedisLedger:
        ledger = RedisLedger(REDIS_URL, prefix, policy or Policy())
        opened.append(ledger)
        return ledger

    make.prefix = prefix  # type: ignore[attr-defined]
    make.url = REDIS_URL  # type: ignore[attr-defined]
    try:
        yield make
    finally:
        for ledger in opened:
            await ledger.close()
        raw = Redis.from_url(REDIS_URL)
        keys = [key async for key in raw.scan_iter(match=f"{prefix}*")]
        if keys:
            await raw.delete(*keys)
        await raw.aclose()


@pytest.fixture
async def redis_ledgers() -> AsyncIterator[LedgerFactory]:
    async with _redis_factory() as make:
        yield make


@pytest.fixture(params=["local", "shared", "redis"])
async def make_ledger(request: pytest.FixtureRequest) -> AsyncIterator[LedgerFactory]:
    """One backend per run of the test; the Redis one skips without a Redis. "shared" is the
    table `serve --workers N` maps for local state: ledgers made by one factory share it, as
    the workers do."""
    if request.param == "local":

        async def make_local(policy: Policy | None = None) -> LocalLedger:
            return LocalLedger(policy or Policy())

        yield make_local
        return
    if request.param == "shared":
        table = SharedTable(capacity=256)

        async def make_shared(policy: Policy | None = None) -> SharedLedger:
            return SharedLedger(table, policy or Policy())

        yield make_shared
        return
    async with _redis_factory() as make:
        yield make
