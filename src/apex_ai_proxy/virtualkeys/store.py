"""The key store: one interface, one module per backend (sqlite_store.py, postgres_store.py).

Two tables, named from the configured prefix:

    <prefix>virtual_keys        one row per key: its fields, key_hash (unique), prefix,
                                spend_total; a revoked key keeps its row (revoked_at set)
    <prefix>virtual_key_spend   (key_id, day) → usd, requests: spend per UTC day, which the
                                budget periods and GET /admin/keys/{id}/spend sum

Every method may raise StoreError; its message never holds a DSN or a key.
"""

from __future__ import annotations

from typing import Any, Protocol

import orjson

from apex_ai_proxy.virtualkeys.model import VirtualKey

COLUMNS = (
    "id",
    "name",
    "key_hash",
    "prefix",
    "created_at",
    "models",
    "rpm",
    "tpm",
    "rpd",
    "max_parallel",
    "budget",
    "budget_period",
    "expires_at",
    "revoked_at",
    "metadata",
    "priority",
    "spend_total",
    "updated_at",
)
_JSON_COLUMNS = ("models", "metadata")
#: What `save` writes: never spend_total, which only `charge` adds to (a save from the CLI
#: or the admin API must not write back a total read before other replicas' charges).
SAVED_COLUMNS = tuple(c for c in COLUMNS if c not in ("id", "spend_total"))


class StoreError(Exception):
    """The store could not be read or written (details in the log, never the DSN)."""


class DuplicateName(StoreError):
    pass


class KeyStore(Protocol):
    async def create(self, key: VirtualKey) -> None: ...

    async def save(self, key: VirtualKey) -> None:
        """Write every field of an existing key (update, revoke, rotate)."""
        ...

    async def get(self, key_id: str) -> VirtualKey | None: ...

    async def by_name(self, name: str) -> VirtualKey | None: ...

    async def all(self) -> list[VirtualKey]: ...

    async def charge(self, charges: list[tuple[str, int, float, int]]) -> None:
        """Add (key id, day, usd, requests) to the daily spend and the key's spend_total."""
        ...

    async def spend_rows(self, since_day: int, key_id: str | None = None) -> list[tuple]:
        """(key id, day, usd, requests) for days from `since_day` on."""
        ...

    async def delete_all(self) -> None:
        """Drop both tables (tests clean up with this)."""
        ...

    async def close(self) -> None: ...


def to_row(key: VirtualKey) -> tuple[Any, ...]:
    values = []
    for column in COLUMNS:
        value = getattr(key, column)
        if column in _JSON_COLUMNS:
            value = None if value is None else orjson.dumps(value).decode()
        values.append(value)
    return tuple(values)


def saved_values(key: VirtualKey) -> tuple[Any, ...]:
    row = dict(zip(COLUMNS, to_row(key), strict=True))
    return (*(row[c] for c in SAVED_COLUMNS), key.id)


def from_row(row: Any) -> VirtualKey:
    data = dict(zip(COLUMNS, tuple(row), strict=True))
    for column in _JSON_COLUMNS:
        if data[column] is not None:
            data[column] = orjson.loads(data[column])
    data["metadata"] = data["metadata"] or {}
    return VirtualKey(**data)
