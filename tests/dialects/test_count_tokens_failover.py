"""/v1/messages/count_tokens goes through the dispatcher: a failing key is cooled down and the
next one asked, as for chat; a 4xx that is not about the key ends the walk with an estimate.

Two keys on one Anthropic provider. The balancer rotates keys per request, so the first count
starts with key 0, and of the two chat requests after it one would start with key 0 again if
that key were not cooling down.
"""

from __future__ import annotations

import time
import uuid

import orjson
import pytest
from redis_support import REDIS_URL, redis_skip_reason
from translation_support import MODEL, anthropic_client, one_model

KEYS = ["sk-count-key-0", "sk-count-key-1"]
MESSAGES = [{"role": "user", "content": "count the tokens of this sentence, please"}]
EXACT = len(orjson.dumps(MESSAGES)) // 4  # what the fake counts; the estimate differs


def two_keys(fake) -> dict:
    config = one_model("anthropic", fake, api_keys=KEYS)
    config["retry"]["max_attempts"] = 2
    return config


def health_of(gw):
    return gw.app.services.health  # the one place that knows where the gateway keeps it


def key_of(received) -> str:
    return {k.lower(): v for k, v in received.headers.items()}["x-api-key"]


async def count(client):
    raw = await client.messages.with_raw_response.count_tokens(model=MODEL, messages=MESSAGES)
    return (await raw.parse()).input_tokens, raw.headers["x-apex-token-count"]


async def test_count_tokens_429_cools_the_key_down(gateway, anthropic_fake):
    gw = await gateway(two_keys(anthropic_fake))
    client = anthropic_client(gw)
    anthropic_fake.push_count_error(429, headers={"retry-after": "30"})

    assert await count(client) == (EXACT, "exact")
    for _ in range(2):
        await client.messages.create(model=MODEL, max_tokens=16, messages=MESSAGES)

    first, second, *chats = anthropic_fake.requests
    assert [first.path, second.path] == ["/v1/messages/count_tokens"] * 2
    cooled, other = key_of(first), key_of(second)
    assert cooled != other
    assert [r.path for r in chats] == ["/v1/messages"] * 2
    assert [key_of(r) for r in chats] == [other, other]  # the cooled key is left out
    health = health_of(gw)
    cooled_unit = health.unit(f"up#{KEYS.index(cooled)}")
    assert cooled_unit.rate_limited and cooled_unit.cooldown_until > time.monotonic() + 5
    assert all(health.unit(f"up#{i}").in_flight == 0 for i in range(2))


async def test_count_tokens_5xx_fails_over_to_the_next_key(gateway, anthropic_fake):
    gw = await gateway(two_keys(anthropic_fake))
    anthropic_fake.push_count_error(503)

    assert await count(anthropic_client(gw)) == (EXACT, "exact")

    first, second = anthropic_fake.requests
    assert key_of(first) != key_of(second)
    # One 5xx is the endpoint's trouble, counted, not the key's: it stays in use.
    unit = health_of(gw).unit(f"up#{KEYS.index(key_of(first))}")
    assert unit.cooldown_until == 0.0 and unit._slot.last_fault[0] > 0.0


async def test_count_tokens_other_4xx_estimates_without_failing_over(gateway, anthropic_fake):
    gw = await gateway(two_keys(anthropic_fake))
    anthropic_fake.push_count_error(404)  # an upstream without the endpoint

    counted, how = await count(anthropic_client(gw))

    assert how == "estimate" and counted != EXACT
    (asked,) = anthropic_fake.requests  # the other key would answer the same: not asked
    unit = health_of(gw).unit(f"up#{KEYS.index(key_of(asked))}")
    assert unit.cooldown_until == 0.0  # not the key's fault: it stays in use


async def test_a_key_one_replica_found_invalid_is_not_asked_to_count_by_another(
    gateway, anthropic_fake
):
    """Two gateways on one Redis state: the key that answered 401 to the first is left out of
    the second's count_tokens (the key pool's learned state), where rotation would ask it."""
    if reason := redis_skip_reason():
        pytest.skip(reason)
    config = two_keys(anthropic_fake)
    config["state"] = {
        "backend": "redis",
        "redis_url": REDIS_URL,
        "key_prefix": f"apex-test:{uuid.uuid4().hex}:",
    }
    config["retry"]["auth_failure_cooldown_s"] = 3600
    one, two = await gateway(config), await gateway(config)
    anthropic_fake.push_count_error(401)

    assert await count(anthropic_client(one)) == (EXACT, "exact")
    rejected, other = (key_of(r) for r in anthropic_fake.requests)
    assert rejected != other

    for _ in range(3):
        assert await count(anthropic_client(two)) == (EXACT, "exact")
    asked = [key_of(r) for r in anthropic_fake.requests[2:]]
    assert asked == [other] * 3
