from __future__ import annotations

import uuid

import pytest
from responses_support import store_section

REDIS_URL = "redis://127.0.0.1:6379"


@pytest.fixture(params=["sqlite", "redis"])
def store_cfg(request, tmp_path):
    """A responses_store section for each backend (Redis: the shared one, own key prefix)."""
    if request.param == "redis":
        import redis

        try:
            redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping()
        except (redis.RedisError, OSError) as exc:
            pytest.skip(f"no Redis at {REDIS_URL}: {exc}")
        return store_section(
            tmp_path, "redis", redis_url=REDIS_URL, key_prefix=f"apex-test:{uuid.uuid4().hex}:"
        )
    return store_section(tmp_path)
