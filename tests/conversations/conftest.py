from __future__ import annotations

import uuid

import pytest
from redis_support import REDIS_URL, redis_skip_reason
from responses_support import store_section


@pytest.fixture(params=["sqlite", "redis"])
def store_cfg(request, tmp_path):
    """A responses_store section for each backend (Redis: the shared one, own key prefix)."""
    if request.param == "redis":
        if reason := redis_skip_reason():
            pytest.skip(reason)
        return store_section(
            tmp_path, "redis", redis_url=REDIS_URL, key_prefix=f"apex-test:{uuid.uuid4().hex}:"
        )
    return store_section(tmp_path)
