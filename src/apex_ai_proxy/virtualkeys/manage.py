"""Creating, changing, revoking and rotating keys: what `keys …` and /admin/keys share.

The key itself exists only in the return value of `create` and `rotate`: the caller shows it
once; the store gets its hash.
"""

from __future__ import annotations

import time

from apex_ai_proxy.virtualkeys.model import (
    DAY_S,
    SHOWN_PREFIX_LENGTH,
    KeyFields,
    VirtualKey,
    apply,
    hash_key,
    new_id,
    new_key,
)
from apex_ai_proxy.virtualkeys.store import KeyStore


class MissingName(ValueError):
    pass


async def create(store: KeyStore, fields: KeyFields) -> tuple[VirtualKey, str]:
    """A new key from `fields` (a name is required); returns it and the key, once."""
    if not fields.name:
        raise MissingName("name is required")
    key = new_key()
    now = time.time()
    entry = VirtualKey(
        id=new_id(),
        name=fields.name,
        key_hash=hash_key(key),
        prefix=key[:SHOWN_PREFIX_LENGTH],
        created_at=now,
        updated_at=now,
    )
    apply(entry, fields)
    await store.create(entry)
    return entry, key


async def find(store: KeyStore, name_or_id: str) -> VirtualKey | None:
    if name_or_id.startswith("vk_"):
        found = await store.get(name_or_id)
        if found is not None:
            return found
    return await store.by_name(name_or_id)


async def update(store: KeyStore, entry: VirtualKey, fields: KeyFields) -> VirtualKey:
    if "name" in fields.model_fields_set and not fields.name:
        raise MissingName("name cannot be removed")
    apply(entry, fields)
    entry.updated_at = time.time()
    await store.save(entry)
    return entry


async def revoke(store: KeyStore, entry: VirtualKey) -> VirtualKey:
    """Revoked for good (the row stays: its spend and records keep their name)."""
    if entry.revoked_at is None:
        entry.revoked_at = entry.updated_at = time.time()
        await store.save(entry)
    return entry


async def rotate(store: KeyStore, entry: VirtualKey) -> tuple[VirtualKey, str]:
    """A new key for the same entry (name, id, limits, spend): the old one stops working."""
    key = new_key()
    entry.key_hash, entry.prefix = hash_key(key), key[:SHOWN_PREFIX_LENGTH]
    entry.updated_at = time.time()
    await store.save(entry)
    return entry, key


async def period_spend(store: KeyStore, entry: VirtualKey, now: float) -> float:
    if entry.budget_period == "never":
        return entry.spend_total
    rows = await store.spend_rows(entry.period_start_day(now), entry.id)
    return sum(r[2] for r in rows)


async def spend_since(store: KeyStore, entry: VirtualKey, since: float) -> dict:
    """Spend per UTC day from the day holding `since` on, and the total."""
    rows = await store.spend_rows(int(since // DAY_S), entry.id)
    days = [
        {"day": time.strftime("%Y-%m-%d", time.gmtime(day * DAY_S)), "usd": usd, "requests": n}
        for _, day, usd, n in rows
    ]
    return {
        "id": entry.id,
        "name": entry.name,
        "since": since,
        "usd": round(sum(d["usd"] for d in days), 10),
        "requests": sum(d["requests"] for d in days),
        "days": days,
    }
