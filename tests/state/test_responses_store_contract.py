"""The ResponseStore contract, run against every backend (see the `bench` fixture)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from apex_ai_proxy.state.responses_store import (
    EVERY_OWNER,
    ConversationCycleError,
    ConversationTooDeepError,
    ResponseNotFoundError,
    ResponseRecordError,
    ResponseStoreError,
    ResponseStoreUnavailableError,
    StoredResponse,
)

if TYPE_CHECKING:
    from conftest import StoreBench


def make_record(
    response_id: str,
    text: str = "hi",
    *,
    previous: str | None = None,
    **references: str | None,
) -> StoredResponse:
    user = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}
    answer = {
        "type": "message",
        "id": f"msg_{response_id}",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": f"re: {text}", "annotations": []}],
    }
    return StoredResponse(
        id=response_id,
        created_at=1_760_000_000,
        model="gpt-4.1-mini",
        input_items=[user],
        instructions="Be brief.",
        response={
            "id": response_id,
            "object": "response",
            "status": "completed",
            "model": "gpt-4.1-mini",
            "output": [answer],
            "usage": {"input_tokens": 5, "output_tokens": 3, "total_tokens": 8},
        },
        output_items=[answer],
        previous_response_id=previous,
        **references,
    )


async def test_put_then_get_returns_an_equal_record(bench: StoreBench) -> None:
    store = await bench.make()
    record = make_record(
        "resp_1", provider="openai", key_name="openai-eu-1", upstream_response_id="resp_up_9"
    )
    await store.put("resp_1", record)
    assert await store.get("resp_1") == record


async def test_get_of_an_unknown_id_is_none(bench: StoreBench) -> None:
    store = await bench.make()
    assert await store.get("resp_never_stored") is None


async def test_delete_removes_once(bench: StoreBench) -> None:
    store = await bench.make()
    await store.put("resp_1", make_record("resp_1"))
    assert await store.delete("resp_1") is True
    assert await store.get("resp_1") is None
    assert await store.delete("resp_1") is False
    assert await store.delete("resp_never_stored") is False


async def test_put_replaces_an_existing_record(bench: StoreBench) -> None:
    store = await bench.make()
    await store.put("resp_1", make_record("resp_1", "first"))
    await store.put("resp_1", make_record("resp_1", "second"))
    stored = await store.get("resp_1")
    assert stored is not None
    assert stored.input_items[0]["content"][0]["text"] == "second"


async def test_put_refuses_a_record_under_another_id(bench: StoreBench) -> None:
    store = await bench.make()
    with pytest.raises(ResponseRecordError, match="must match"):
        await store.put("resp_1", make_record("resp_2"))
    assert await store.get("resp_1") is None


async def test_expired_record_is_invisible(bench: StoreBench) -> None:
    store = await bench.make(ttl_seconds=0.3)
    await store.put("resp_1", make_record("resp_1"))
    assert await store.get("resp_1") is not None
    await asyncio.sleep(0.5)
    assert await store.get("resp_1") is None
    assert await store.delete("resp_1") is False


async def test_conversation_walks_back_to_the_first_turn(bench: StoreBench) -> None:
    store = await bench.make()
    await store.put("resp_a", make_record("resp_a", "one"))
    await store.put("resp_b", make_record("resp_b", "two", previous="resp_a"))
    await store.put("resp_c", make_record("resp_c", "three", previous="resp_b"))

    assert [r.id for r in await store.conversation("resp_c", owner=None)] == [
        "resp_a",
        "resp_b",
        "resp_c",
    ]
    assert [r.id for r in await store.conversation("resp_a", owner=None)] == ["resp_a"]

    texts = [
        item["content"][0]["text"] for item in await store.conversation_items("resp_c", owner=None)
    ]
    assert texts == ["one", "re: one", "two", "re: two", "three", "re: three"]


async def test_conversation_with_a_missing_link_names_it(bench: StoreBench) -> None:
    store = await bench.make()
    await store.put("resp_b", make_record("resp_b", previous="resp_gone"))
    with pytest.raises(ResponseNotFoundError) as caught:
        await store.conversation_items("resp_b", owner=None)
    assert caught.value.response_id == "resp_gone"
    assert caught.value.requested_id == "resp_b"

    with pytest.raises(ResponseNotFoundError, match="'resp_never_stored' not found"):
        await store.conversation("resp_never_stored", owner=None)


async def test_conversation_stops_at_a_cycle(bench: StoreBench) -> None:
    store = await bench.make()
    await store.put("resp_a", make_record("resp_a", previous="resp_b"))
    await store.put("resp_b", make_record("resp_b", previous="resp_a"))
    with pytest.raises(ConversationCycleError):
        await store.conversation("resp_b", owner=None)


async def test_conversation_depth_is_bounded(bench: StoreBench) -> None:
    store = await bench.make()
    previous = None
    for n in range(5):
        await store.put(f"resp_{n}", make_record(f"resp_{n}", previous=previous))
        previous = f"resp_{n}"
    assert len(await store.conversation("resp_4", owner=None, max_depth=5)) == 5
    with pytest.raises(ConversationTooDeepError):
        await store.conversation("resp_4", owner=None, max_depth=4)


async def test_unicode_survives_the_round_trip(bench: StoreBench) -> None:
    store = await bench.make()
    text = 'naïve café 中文 日本語 עברית العربية 👩🏽‍💻🇫🇷 e\u0301 \x00 \u2028\u2029 \t\n"\\'
    record = make_record("resp_ü_中", text)
    await store.put("resp_ü_中", record)
    stored = await store.get("resp_ü_中")
    assert stored == record
    assert stored.input_items[0]["content"][0]["text"] == text


async def test_a_value_json_cannot_hold_is_refused(bench: StoreBench) -> None:
    store = await bench.make()
    with pytest.raises(ResponseRecordError, match="cannot be serialized"):
        await store.put("resp_1", make_record("resp_1", "lone surrogate \ud800"))
    assert await store.get("resp_1") is None


async def test_large_items_round_trip(bench: StoreBench) -> None:
    store = await bench.make()
    big_text = "0123456789abcdef" * (512 * 1024)  # 8 MiB in one item
    record = make_record("resp_big", big_text)
    many = [
        {"type": "function_call_output", "call_id": f"c{n}", "output": "x" * 100}
        for n in range(5000)
    ]
    record.input_items.extend(many)
    await store.put("resp_big", record)
    stored = await store.get("resp_big")
    assert stored == record
    assert len(stored.input_items) == 5001


async def test_stored_bytes_hold_key_names_never_keys(bench: StoreBench) -> None:
    secret = "sk-proj-TEST0nlyN0tARealKey0123456789abcdefABCDEF"
    upstream_keys = {"openai-eu-1": secret}  # what the gateway config holds
    store = await bench.make()
    key_name = next(iter(upstream_keys))
    await store.put("resp_1", make_record("resp_1", provider="openai", key_name=key_name))

    raw = await bench.raw_bytes()
    assert b"openai-eu-1" in raw  # we are looking at the bytes the store wrote
    assert secret.encode() not in raw

    with pytest.raises(ResponseRecordError, match="looks like an API key") as caught:
        make_record("resp_2", key_name=secret)
    assert secret not in str(caught.value)


async def test_a_closed_store_refuses_calls(bench: StoreBench) -> None:
    store = await bench.make()
    await store.put("resp_1", make_record("resp_1"))
    await store.close()
    await store.close()  # idempotent
    with pytest.raises(ResponseStoreUnavailableError, match="closed"):
        await store.get("resp_1")


def test_records_from_a_newer_format_are_readable_and_garbage_is_refused() -> None:
    record = make_record("resp_1", provider="openai", key_name="openai-eu-1")
    newer = record.to_json()[:-1] + b',"field_added_later":{"x":1}}'
    assert StoredResponse.from_json(newer) == record
    with pytest.raises(ResponseStoreError, match="unreadable"):
        StoredResponse.from_json(b'{"v":1,"id":"resp_1"}')
    with pytest.raises(ResponseStoreError, match="unreadable"):
        StoredResponse.from_json(b"\x00not json")


async def test_stored_response_is_invisible_to_another_owner(bench: StoreBench) -> None:
    store = await bench.make()
    await store.put("resp_a", make_record("resp_a", "first", owner="token-1"))
    await store.put("resp_b", make_record("resp_b", "second", previous="resp_a", owner="token-1"))

    assert (await store.get("resp_b")).owner == "token-1"  # the owner round-trips
    assert await store.get_visible("resp_b", "token-1") == await store.get("resp_b")
    assert await store.get_visible("resp_b", "token-2") is None
    assert await store.get_visible("resp_b", None) is None  # no-token scope is another scope
    assert await store.get_visible("resp_b", EVERY_OWNER) is not None  # the admin hook
    assert [r.id for r in await store.conversation("resp_b", owner="token-1")] == [
        "resp_a",
        "resp_b",
    ]
    with pytest.raises(ResponseNotFoundError):
        await store.conversation("resp_b", owner="token-2")

    assert await store.delete_visible("resp_b", "token-2") is False
    assert await store.get("resp_b") is not None
    assert await store.delete_visible("resp_b", "token-1") is True
    assert await store.get("resp_b") is None


async def test_conversation_refuses_an_ancestor_of_another_owner(bench: StoreBench) -> None:
    store = await bench.make()
    await store.put("resp_theirs", make_record("resp_theirs", owner="token-2"))
    await store.put("resp_mine", make_record("resp_mine", previous="resp_theirs", owner="token-1"))
    with pytest.raises(ResponseNotFoundError) as caught:
        await store.conversation_items("resp_mine", owner="token-1")
    assert caught.value.response_id == "resp_theirs"


async def test_a_record_without_owner_is_visible_only_to_the_no_token_scope(
    bench: StoreBench,
) -> None:
    store = await bench.make()
    await store.put("resp_old", make_record("resp_old"))
    assert await store.get_visible("resp_old", None) is not None
    assert await store.get_visible("resp_old", "token-1") is None
