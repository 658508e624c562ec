"""ResponsesStoreConfig validation and the open_store factory."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from apex_ai_proxy.state.config import ResponsesStoreConfig, redacted_redis_url
from apex_ai_proxy.state.open_store import open_store
from apex_ai_proxy.state.responses_store import ResponseStoreUnavailableError
from apex_ai_proxy.state.sqlite_responses import SQLiteResponseStore


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    config = ResponsesStoreConfig()
    assert config.backend == "sqlite"
    assert config.path == Path("apex-responses.db")
    assert config.redis_url == "redis://127.0.0.1:6379"
    assert config.ttl_seconds == 30 * 24 * 3600
    assert config.key_prefix == "apex:responses:"


def test_redis_url_defaults_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://cache.internal:6380/2")
    assert ResponsesStoreConfig().redis_url == "redis://cache.internal:6380/2"


@pytest.mark.parametrize(
    ("fields", "where"),
    [
        ({"backend": "postgres"}, "backend"),
        ({"ttl_seconds": 0}, "ttl_seconds"),
        ({"key_prefix": ""}, "key_prefix"),
        ({"prune_interval_seconds": -1}, "prune_interval_seconds"),
        ({"redis_url": "http://cache:6379"}, "redis_url"),
        ({"ttl": 60}, "ttl"),  # unknown keys are typos, not silently ignored
    ],
)
def test_invalid_config_names_the_field(fields: dict[str, object], where: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ResponsesStoreConfig(**fields)
    assert [error["loc"] for error in caught.value.errors()] == [(where,)]


def test_bad_redis_url_error_does_not_echo_the_password() -> None:
    with pytest.raises(ValidationError) as caught:
        ResponsesStoreConfig(redis_url="cache.internal:6379?password=hunter2")
    assert "hunter2" not in str(caught.value)
    assert "hunter2" not in repr(ResponsesStoreConfig(redis_url="redis://:hunter2@cache:6379"))


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:hunter2@cache:6379/0", "redis://:***@cache:6379/0"),
        ("rediss://app:hunter2@cache.internal", "rediss://app:***@cache.internal"),
        ("redis://cache:6379", "redis://cache:6379"),
    ],
)
def test_redacted_redis_url(url: str, shown: str) -> None:
    assert redacted_redis_url(url) == shown


async def test_open_store_defaults_to_sqlite(tmp_path: Path) -> None:
    store = await open_store(ResponsesStoreConfig(path=tmp_path / "r.db"))
    try:
        assert isinstance(store, SQLiteResponseStore)
        assert (tmp_path / "r.db").exists()
    finally:
        await store.close()


async def test_unreachable_redis_opens_degraded_without_leaking_the_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Redis down at start-up must not stop the gateway: the store opens, says why it cannot
    # serve, and each call fails at once with the reason (a 503 for the client).
    config = ResponsesStoreConfig(backend="redis", redis_url="redis://:hunter2@127.0.0.1:1/0")
    store = await open_store(config)
    try:
        assert store.reachable is False
        with pytest.raises(ResponseStoreUnavailableError, match="is unreachable") as caught:
            await store.get("resp_1")
    finally:
        await store.close()
    assert "redis://:***@127.0.0.1:1/0" in str(caught.value)
    assert "hunter2" not in str(caught.value)
    assert "hunter2" not in caplog.text
    assert "redis://:***@127.0.0.1:1/0" in caplog.text
