"""`open_store(config)`: the response store backend the config names.

Its own module because the backends import the interface (`responses_store.py`): the factory
that imports the backends sitting in the interface module would make a cycle. The Redis backend
is imported only when configured (its client library is loaded only then).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from apex_ai_proxy.state.responses_store import ResponseStore

if TYPE_CHECKING:
    from apex_ai_proxy.state.config import ResponsesStoreConfig


async def open_store(config: ResponsesStoreConfig) -> ResponseStore:
    """Open the backend `config` names. Fails now, not on the first request, if it cannot."""
    if config.backend == "redis":
        from apex_ai_proxy.state.redis_responses import RedisResponseStore

        return await RedisResponseStore.open(
            config.redis_url, key_prefix=config.key_prefix, ttl_seconds=config.ttl_seconds
        )
    from apex_ai_proxy.state.sqlite_responses import SQLiteResponseStore

    return await SQLiteResponseStore.open(
        config.path,
        ttl_seconds=config.ttl_seconds,
        prune_interval_seconds=config.prune_interval_seconds,
    )
