"""`open_store`: the store the config names (kept apart from store.py, which the backends
import, so that nothing imports in a circle)."""

from __future__ import annotations

from apex_ai_proxy.virtualkeys.config import StoreConfig
from apex_ai_proxy.virtualkeys.store import KeyStore


def open_store(config: StoreConfig) -> KeyStore:
    """The store for `config` (no I/O: it connects on first use)."""
    if config.backend == "postgres":
        from apex_ai_proxy.virtualkeys.postgres_store import PostgresStore

        return PostgresStore(config)
    from apex_ai_proxy.virtualkeys.sqlite_store import SqliteStore

    return SqliteStore(config)
