"""Stored responses belong to the gateway token that created them.

Another token's GET, DELETE, input_items, cancel and previous_response_id get exactly what an
unknown id gets, so it cannot even learn that the id exists. Both store backends.
"""

from __future__ import annotations

import openai
import pytest
from responses_support import ToolCallingChatUpstream, chat_provider, responses_config

from apex_ai_proxy.auth import token_owner
from apex_ai_proxy.state.config import ResponsesStoreConfig
from apex_ai_proxy.state.open_store import open_store
from apex_ai_proxy.state.responses_store import StoredResponse

TOKENS = ["tok-alice-7f3a", "tok-bob-91c2"]


@pytest.fixture
async def chat_fake():
    fake = await ToolCallingChatUpstream("chat").start()
    yield fake
    await fake.stop()


async def two_clients(gateway, chat_fake, store_cfg):
    cfg = responses_config(
        {"oa": chat_provider(chat_fake)}, {"m": ["oa"]}, store_cfg, gateway_tokens=TOKENS
    )
    gw = await gateway(cfg)
    return gw, gw.openai(TOKENS[0]), gw.openai(TOKENS[1])


async def not_found_body(call) -> dict:
    with pytest.raises(openai.NotFoundError) as info:
        await call
    return info.value.body


async def test_stored_response_is_invisible_to_another_token(gateway, chat_fake, store_cfg):
    gw, alice, bob = await two_clients(gateway, chat_fake, store_cfg)
    mine = await alice.responses.create(model="m", input="alice's secret plan")

    unknown = await not_found_body(bob.responses.retrieve("resp_never_stored"))
    other = await not_found_body(bob.responses.retrieve(mine.id))
    assert other == {**unknown, "message": unknown["message"].replace("resp_never_stored", mine.id)}
    await not_found_body(bob.responses.input_items.list(mine.id))
    await not_found_body(bob.responses.cancel(mine.id))
    # The owner still sees it all.
    assert (await alice.responses.retrieve(mine.id)).output_text == mine.output_text
    page = await alice.responses.input_items.list(mine.id)
    assert page.data[0].content[0].text == "alice's secret plan"


async def test_another_token_cannot_delete_a_stored_response(gateway, chat_fake, store_cfg):
    gw, alice, bob = await two_clients(gateway, chat_fake, store_cfg)
    mine = await alice.responses.create(model="m", input="keep this")
    await not_found_body(bob.responses.delete(mine.id))
    assert (await alice.responses.retrieve(mine.id)).id == mine.id
    await alice.responses.delete(mine.id)
    await not_found_body(alice.responses.retrieve(mine.id))


async def test_another_token_cannot_continue_a_stored_response(gateway, chat_fake, store_cfg):
    gw, alice, bob = await two_clients(gateway, chat_fake, store_cfg)
    mine = await alice.responses.create(model="m", input="the password is swordfish")
    calls = len(chat_fake.requests)
    with pytest.raises(openai.BadRequestError) as info:
        await bob.responses.create(model="m", input="what was said?", previous_response_id=mine.id)
    # Word for word what an unknown id gets (OpenAI answers 400 for previous_response_id).
    assert info.value.body["message"] == f"Previous response with id '{mine.id}' not found."
    assert info.value.body["code"] == "previous_response_not_found"
    assert len(chat_fake.requests) == calls  # nothing of alice's went upstream for bob
    follow = await alice.responses.create(model="m", input="and?", previous_response_id=mine.id)
    assert follow.previous_response_id == mine.id


async def test_stored_response_names_its_token_never_the_token_itself(gateway, chat_fake, tmp_path):
    section = {"backend": "sqlite", "path": str(tmp_path / "responses.db")}
    gw, alice, _ = await two_clients(gateway, chat_fake, section)
    mine = await alice.responses.create(model="m", input="hi")
    store = await open_store(ResponsesStoreConfig(**section))
    try:
        record = await store.get(mine.id)
    finally:
        await store.close()
    # Owned by the token's fingerprint, not its name or position ("token-1").
    assert record.owner == token_owner(TOKENS[0]) and record.owner.startswith("tok_")
    assert TOKENS[0].encode() not in record.to_json()
    db_bytes = b"".join(p.read_bytes() for p in tmp_path.glob("responses.db*"))
    assert TOKENS[0].encode() not in db_bytes


async def test_without_gateway_tokens_every_client_shares_one_scope(gateway, chat_fake, store_cfg):
    gw = await gateway(responses_config({"oa": chat_provider(chat_fake)}, {"m": ["oa"]}, store_cfg))
    one, two = gw.openai("anything"), gw.openai("something-else")
    mine = await one.responses.create(model="m", input="shared")
    assert (await two.responses.retrieve(mine.id)).id == mine.id


async def test_response_stored_before_scoping_is_hidden_once_tokens_are_on(
    gateway, chat_fake, store_cfg
):
    # A record written by an older gateway has no owner: whose it was cannot be known, so with
    # tokens on nobody sees it; without tokens (one scope) it stays readable.
    store = await open_store(ResponsesStoreConfig(**store_cfg))
    try:
        await store.put("resp_legacy", legacy_record("resp_legacy"))
    finally:
        await store.close()
    gw, alice, _ = await two_clients(gateway, chat_fake, store_cfg)
    await not_found_body(alice.responses.retrieve("resp_legacy"))
    open_gw = await gateway(
        responses_config({"oa": chat_provider(chat_fake)}, {"m": ["oa"]}, store_cfg)
    )
    assert (await open_gw.openai().responses.retrieve("resp_legacy")).id == "resp_legacy"


async def test_response_owned_by_a_token_position_is_hidden_once_owners_are_fingerprints(
    gateway, chat_fake, store_cfg
):
    # The first scoped builds (never released) owned records by position ("token-1"): which
    # token that was cannot be known once tokens change, so nobody sees them with tokens on.
    store = await open_store(ResponsesStoreConfig(**store_cfg))
    try:
        await store.put("resp_positional", legacy_record("resp_positional", owner="token-1"))
    finally:
        await store.close()
    gw, alice, _ = await two_clients(gateway, chat_fake, store_cfg)
    await not_found_body(alice.responses.retrieve("resp_positional"))


def legacy_record(response_id: str, owner: str | None = None) -> StoredResponse:
    response = {"id": response_id, "object": "response", "status": "completed", "model": "m"}
    response |= {"created_at": 1_760_000_000, "output": []}
    return StoredResponse(
        id=response_id,
        created_at=1_760_000_000,
        model="m",
        input_items=[],
        instructions=None,
        response=response,
        output_items=[],
        owner=owner,
    )
