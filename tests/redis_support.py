"""The Redis tests use: where it is (REDIS_URL, or 127.0.0.1:6379), and why a test skips when
none answers there (the reason names the URL without its password)."""

from __future__ import annotations

import functools
import os

import redis

from apex_ai_proxy.state.config import redacted_redis_url

REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379"


@functools.cache
def redis_skip_reason() -> str | None:
    """None when Redis answers a PING (asked once per test run), else why not."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        return f"no Redis reachable at {redacted_redis_url(REDIS_URL)} ({exc})"
    finally:
        client.close()
    return None
