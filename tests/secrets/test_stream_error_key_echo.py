"""Issue 10, item 4: a key quoted inside a 200 answer: an upstream's mid-stream error event, or a
whole 200 body holding an error object. Neither the client (chat, messages, responses; relayed
as bytes or translated), nor the records, nor the stored Responses object may hold it."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fakes.careless_upstream import CarelessUpstream, Events, Whole
from secrets_support import (
    ENDPOINTS,
    KEYS,
    SAME_DIALECT,
    TOKEN,
    config,
    everything_written,
    send,
)
from spellings import leaked, spellings

OPENAI_CHUNK = (
    b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":'
    b'[{"index":0,"delta":{"role":"assistant","content":"Hel"},"finish_reason":null}]}\n\n'
)
ANTHROPIC_START = (
    b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_1","type":'
    b'"message","role":"assistant","model":"m","content":[],"stop_reason":null,"usage":'
    b'{"input_tokens":1,"output_tokens":0}}}\n\n'
    b'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
    b'"content_block":{"type":"text","text":""}}\n\n'
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":'
    b'{"type":"text_delta","text":"Hel"}}\n\n'
)
RESPONSES_CREATED = (
    b'event: response.created\ndata: {"type":"response.created","response":{"id":"resp_1",'
    b'"object":"response","created_at":1,"status":"in_progress","model":"m","output":[],'
    b'"error":null}}\n\n'
)


def error_event(provider: str, spelled: str) -> bytes:
    """The error event `provider`'s dialect sends mid-stream, quoting the key `spelled`."""
    message = f"Quota exceeded for key {spelled}".encode()
    if provider == "openai":
        return b'data: {"error":{"message":"' + message + b'","type":"server_error"}}\n\n'
    if provider == "anthropic":
        return (
            b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"'
            + message
            + b'"}}\n\n'
        )
    return (
        b'event: response.failed\ndata: {"type":"response.failed","response":{"id":"resp_1",'
        b'"object":"response","created_at":1,"status":"failed","model":"m","output":[],'
        b'"error":{"code":"server_error","message":"' + message + b'"}}}\n\n'
    )


def stream_with_error(provider: str, spelled: str, split: bool) -> Events:
    start = {"openai": OPENAI_CHUNK, "anthropic": ANTHROPIC_START, "responses": RESPONSES_CREATED}
    event = error_event(provider, spelled)
    if not split:
        return Events((start[provider], event))
    cut = event.index(b"Quota") + 26  # inside the key: no chunk holds it whole
    return Events((start[provider], event[:cut], event[cut:]))


def whole_with_error(spelled: str) -> Whole:
    """A 200 whose body is an error object (some upstreams answer errors so)."""
    return Whole(200, b'{"error":{"message":"key ' + spelled.encode() + b' is revoked"}}')


def assert_no_key_in(found: dict[str, bytes]) -> None:
    leaks = [(name, where) for name, key in KEYS.items() for where, data in found.items()
             if leaked(key, data)]  # fmt: skip
    assert leaks == []


@pytest.mark.parametrize("spelling", ["literal", "dash_lower_hex", "php_slash"])
@pytest.mark.parametrize("split", [False, True], ids=["whole_event", "event_cut_in_the_key"])
async def test_a_key_in_an_upstream_stream_error_event_reaches_no_client_record_or_store(
    gateway, tmp_path: Path, caplog: pytest.LogCaptureFixture, spelling: str, split: bool
) -> None:
    caplog.set_level(logging.DEBUG)
    upstream = await CarelessUpstream().start()
    try:
        gw = await gateway(config(upstream, tmp_path))
        answers: dict[str, bytes] = {}
        for endpoint in ENDPOINTS:
            for provider, key in KEYS.items():
                upstream.queue(stream_with_error(provider, spellings(key)[spelling], split))
                status, answer = await send(gw, endpoint, provider, stream=True)
                assert status == 200, (endpoint, provider, answer)
                assert b"[REDACTED]" in answer, (endpoint, provider, answer)
                same = "same" if SAME_DIALECT[endpoint] == provider else "translated"
                answers[f"{endpoint} {provider} {same}"] = answer
        assert_no_key_in(answers)
        found = await everything_written(gw, tmp_path)
        assert "responses.db" in found  # the Responses API stored what it answered
        assert_no_key_in(found)
        assert_no_key_in({"log": caplog.text.encode()})
    finally:
        await upstream.stop()


async def test_a_key_in_a_200_body_holding_an_error_object_reaches_no_client_or_record(
    gateway, tmp_path: Path
) -> None:
    upstream = await CarelessUpstream().start()
    try:
        gw = await gateway(config(upstream, tmp_path))
        answers: dict[str, bytes] = {}
        for endpoint in ENDPOINTS:
            provider = SAME_DIALECT[endpoint]  # relayed as it is: nothing decodes it
            for spelling in ("literal", "every_char_upper"):
                upstream.queue(whole_with_error(spellings(KEYS[provider])[spelling]))
                status, answer = await send(gw, endpoint, provider)
                answers[f"{endpoint} {spelling} {status}"] = answer
                if endpoint != "responses":  # the Responses API needs a response id to answer
                    assert b"[REDACTED]" in answer, (endpoint, answer)
        assert_no_key_in(answers)
        assert_no_key_in(await everything_written(gw, tmp_path))
    finally:
        await upstream.stop()


async def test_a_stored_response_holds_no_key_the_upstream_quoted_in_its_failure(
    gateway, tmp_path: Path
) -> None:
    upstream = await CarelessUpstream().start()
    try:
        gw = await gateway(config(upstream, tmp_path))
        key = KEYS["responses"]
        failed = (
            b'{"id":"resp_9","object":"response","created_at":1,"status":"failed","model":"m",'
            b'"output":[],"error":{"code":"server_error","message":"key '
            + spellings(key)["dash_upper_hex"].encode()
            + b' revoked"}}'
        )
        upstream.queue(Whole(200, failed))
        status, answer = await send(gw, "responses", "responses")
        assert status == 200 and b"[REDACTED]" in answer
        async with gw.http().get(
            "/v1/responses/resp_9", headers={"Authorization": f"Bearer {TOKEN}"}
        ) as stored:
            assert stored.status == 200
            body = await stored.read()
        assert b"[REDACTED]" in body and not leaked(key, body)
        assert_no_key_in(await everything_written(gw, tmp_path))
    finally:
        await upstream.stop()
