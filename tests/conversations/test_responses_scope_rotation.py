"""Probe of the item-11 fix: the owner of a stored response was the gateway token's position in
`gateway_tokens` ("token-1"), so an operator who removed or reordered tokens handed every stored
response to whichever token then sat at that position (for the 30-day TTL). It is now a
fingerprint of the token itself."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest
from responses_support import ToolCallingChatUpstream, chat_provider, responses_config

ALICE, BOB = "tok-alice-7f3a", "tok-bob-91c2"
REDIS_URL = "redis://127.0.0.1:6379"


@pytest.fixture
async def chat_fake():
    fake = await ToolCallingChatUpstream("chat").start()
    yield fake
    await fake.stop()


async def test_removing_a_gateway_token_does_not_hand_its_stored_responses_to_another(
    gateway, chat_fake, tmp_path: Path
) -> None:
    store = {"backend": "sqlite", "path": str(tmp_path / "responses.db")}
    providers, models = {"oa": chat_provider(chat_fake)}, {"m": ["oa"]}
    before = await gateway(responses_config(providers, models, store, gateway_tokens=[ALICE, BOB]))
    alices = await before.openai(ALICE).responses.create(model="m", input="alice's secret plan")
    await before.app.stop(grace=1.0)

    # Alice leaves: the operator deletes her token, Bob's stays.
    after = await gateway(responses_config(providers, models, store, gateway_tokens=[BOB]))
    with pytest.raises(openai.NotFoundError):
        await after.openai(BOB).responses.retrieve(alices.id)


async def test_reordering_gateway_tokens_keeps_each_tokens_stored_responses(
    gateway, chat_fake, tmp_path: Path
) -> None:
    store = {"backend": "sqlite", "path": str(tmp_path / "responses.db")}
    providers, models = {"oa": chat_provider(chat_fake)}, {"m": ["oa"]}
    before = await gateway(responses_config(providers, models, store, gateway_tokens=[ALICE, BOB]))
    alices = await before.openai(ALICE).responses.create(model="m", input="alice's secret plan")
    await before.app.stop(grace=1.0)

    after = await gateway(responses_config(providers, models, store, gateway_tokens=[BOB, ALICE]))
    with pytest.raises(openai.NotFoundError):
        await after.openai(BOB).responses.retrieve(alices.id)
    assert (await after.openai(ALICE).responses.retrieve(alices.id)).id == alices.id


@pytest.fixture
def shared_redis_prefix():
    import uuid

    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping()
    except (redis.RedisError, OSError) as exc:
        pytest.skip(f"no Redis at {REDIS_URL}: {exc}")
    prefix = f"apex-test:{uuid.uuid4().hex}:"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"{prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()


async def test_an_id_naming_a_nested_key_prefix_does_not_read_another_gateways_response(
    gateway, chat_fake, shared_redis_prefix: str
) -> None:
    """Two gateways share one Redis, one prefix nested in the other (`apex:responses:` and
    `apex:responses:staging:`). The id `staging:<id>` made the first read the second's key."""
    providers, models = {"oa": chat_provider(chat_fake)}, {"m": ["oa"]}

    def store(prefix: str) -> dict:
        return {"backend": "redis", "redis_url": REDIS_URL, "key_prefix": prefix}

    prod = await gateway(
        responses_config(providers, models, store(shared_redis_prefix), gateway_tokens=[ALICE])
    )
    staging = await gateway(
        responses_config(
            providers, models, store(shared_redis_prefix + "staging:"), gateway_tokens=[BOB]
        )
    )
    bobs = await staging.openai(BOB).responses.create(model="m", input="staging secrets")
    alice = prod.openai(ALICE)
    with pytest.raises(openai.NotFoundError):
        await alice.responses.retrieve(f"staging:{bobs.id}")
    with pytest.raises(openai.NotFoundError):
        await alice.responses.input_items.list(f"staging:{bobs.id}")
    with pytest.raises(openai.BadRequestError):
        await alice.responses.create(
            model="m", input="go on", previous_response_id=f"staging:{bobs.id}"
        )
    with pytest.raises(openai.NotFoundError):
        await alice.responses.delete(f"staging:{bobs.id}")
    assert (await staging.openai(BOB).responses.retrieve(bobs.id)).id == bobs.id
