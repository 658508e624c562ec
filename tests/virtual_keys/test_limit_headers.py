"""A key with limits sees what is left of them on every answer, whole or streamed (clients such as
the OpenAI SDK read x-ratelimit-* on each one); a key without limits and a gateway token see none.
Local and Redis ledgers alike: the numbers come from the reservation either way."""

from __future__ import annotations

import pytest
from vk_support import CLIENT, chat, create_key, gateway_config, redis_skip_reason


@pytest.fixture(params=["local", "redis"])
def state(request: pytest.FixtureRequest, redis_state_factory) -> dict | None:
    return None if request.param == "local" else redis_state_factory()


def ratelimit_headers(headers) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items() if k.lower().startswith("x-ratelimit-")}


def reset_seconds(value: str) -> int:
    assert value.endswith("s"), value
    return int(value[:-1])


async def test_answers_of_a_key_with_rpm_count_down_to_the_429(gateway, tmp_path, state):
    store = {"backend": "sqlite", "path": str(tmp_path / "keys.db")}
    gw = await gateway(gateway_config(store, state))
    key = (await create_key(gw, name="counted", rpm=3))["key"]
    left = []
    for stream in (False, True, False):
        status, headers, body = await chat(gw, key, stream=stream)
        assert status == 200, body
        seen = ratelimit_headers(headers)
        assert seen["x-ratelimit-limit-requests"] == "3"
        assert 1 <= reset_seconds(seen["x-ratelimit-reset-requests"]) <= 70
        assert set(seen) == {
            "x-ratelimit-limit-requests",
            "x-ratelimit-remaining-requests",
            "x-ratelimit-reset-requests",
        }
        left.append(seen["x-ratelimit-remaining-requests"])
    assert left == ["2", "1", "0"]
    status, headers, _ = await chat(gw, key)
    assert status == 429 and headers["x-ratelimit-remaining-requests"] == "0"


async def test_tokens_and_day_windows_show_beside_the_minute(gateway, tmp_path, state):
    store = {"backend": "sqlite", "path": str(tmp_path / "keys.db")}
    gw = await gateway(gateway_config(store, state))
    key = (await create_key(gw, name="windows", tpm=100_000, rpd=1000))["key"]
    status, headers, body = await chat(gw, key, stream=True)
    assert status == 200 and "[DONE]" in body
    seen = ratelimit_headers(headers)
    assert seen["x-ratelimit-limit-tokens"] == "100000"
    # the request's estimate (a quarter of its body's bytes) is reserved: a few dozen tokens
    assert 99_900 <= int(seen["x-ratelimit-remaining-tokens"]) < 100_000
    assert seen["x-ratelimit-limit-requests-day"] == "1000"
    # the tightest window here is the day's: exact (999), the tokens' a lower bound
    assert seen["x-ratelimit-remaining-requests-day"] == "999"
    assert 1 <= reset_seconds(seen["x-ratelimit-reset-requests-day"]) <= 86_400
    assert "x-ratelimit-limit-requests" not in seen  # no rpm on this key


async def test_no_ratelimit_headers_without_limits(gateway, tmp_path):
    store = {"backend": "sqlite", "path": str(tmp_path / "keys.db")}
    gw = await gateway(gateway_config(store))
    unlimited = (await create_key(gw, name="free", budget=100))["key"]
    for token in (unlimited, CLIENT):
        for stream in (False, True):
            status, headers, body = await chat(gw, token, stream=stream)
            assert status == 200, body
            assert ratelimit_headers(headers) == {}


@pytest.fixture
def redis_state_factory(request: pytest.FixtureRequest):
    """The `redis_state` fixture on demand (only the Redis half of `state` needs it)."""

    def make() -> dict:
        if reason := redis_skip_reason():
            pytest.skip(reason)
        return request.getfixturevalue("redis_state")

    return make
