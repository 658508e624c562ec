"""The key store contract, on SQLite and on a real Postgres."""

from __future__ import annotations

import asyncio

import pytest

from apex_ai_proxy.virtualkeys import manage
from apex_ai_proxy.virtualkeys.backend import open_store
from apex_ai_proxy.virtualkeys.cache import KeyCache
from apex_ai_proxy.virtualkeys.config import VirtualKeysConfig
from apex_ai_proxy.virtualkeys.fields import fields_from_json
from apex_ai_proxy.virtualkeys.model import DAY_S, hash_key
from apex_ai_proxy.virtualkeys.store import DuplicateName


def opened(store_config: dict):
    return open_store(VirtualKeysConfig(store=store_config).store)


async def test_store_round_trip(store_config):
    store = opened(store_config)
    try:
        entry, key = await manage.create(
            store, fields_from_json({"name": "a", "models": ["x", "y"], "metadata": {"k": "v"}})
        )
        assert entry.key_hash == hash_key(key)
        again = await store.get(entry.id)
        assert again == entry
        assert (await store.by_name("a")).id == entry.id
        with pytest.raises(DuplicateName):
            await manage.create(store, fields_from_json({"name": "a"}))
        await manage.update(store, again, fields_from_json({"rpm": 7, "name": "b"}))
        assert (await store.by_name("b")).rpm == 7
        assert await store.by_name("a") is None
        assert [k.name for k in await store.all()] == ["b"]
    finally:
        await store.close()


async def test_charges_from_two_replicas_add_up_and_a_stale_save_keeps_them(store_config):
    one, two = opened(store_config), opened(store_config)
    try:
        entry, _ = await manage.create(one, fields_from_json({"name": "spender"}))
        stale = await two.get(entry.id)
        day = 20_000
        await asyncio.gather(
            *(s.charge([(entry.id, day, 0.25, 1)]) for s in (one, two) for _ in range(10))
        )
        await manage.update(two, stale, fields_from_json({"rpm": 3}))  # read before the charges
        fresh = await one.get(entry.id)
        assert fresh.spend_total == pytest.approx(5.0)
        assert fresh.rpm == 3
        rows = await one.spend_rows(day, entry.id)
        assert [(r[1], round(r[2], 6), r[3]) for r in rows] == [(day, 5.0, 20)]
        assert await one.spend_rows(day + 1, entry.id) == []
    finally:
        await one.close()
        await two.close()


async def test_cache_counts_a_charge_once_through_flush_and_refresh(store_config):
    store = opened(store_config)
    try:
        entry, key = await manage.create(
            store, fields_from_json({"name": "c", "budget": 10.0, "budget_period": "1d"})
        )
        cache = KeyCache(store, ttl_s=60)
        await cache.refresh()
        cached = cache.lookup(hash_key(key))
        assert cached is not None and cache.spend(cached) == 0
        now = entry.created_at
        cache.charge(entry.id, 1.5, now)
        assert cache.spend(cached) == 1.5  # at once, before the write
        await cache.flush()
        assert cache.spend(cached) == pytest.approx(1.5)
        await cache.refresh()
        assert cache.spend(cached) == pytest.approx(1.5)
        # a new period starts from nothing
        later = KeyCache(store, ttl_s=60, clock=lambda: now + 2 * DAY_S)
        await later.refresh()
        assert later.spend(cached) == 0
        await cache.close()
    finally:
        await store.close()
