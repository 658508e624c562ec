"""Issue 10, item 3: an upstream that quotes the key it was given, JSON- or URL-escaped, in an
error body. The key must reach no client answer (the gateway's own 503 attempt list, a
translated 4xx, a same-dialect relayed 4xx), no record (JSONL, SQLite, raw capture) and no log
line, in any spelling."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import orjson
import pytest
from fakes.careless_upstream import CarelessUpstream, Whole
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

from apex_ai_proxy.telemetry import Redactor

SPELLINGS = list(spellings("sk-x/y-z"))


def error_body(spelled: str) -> bytes:
    """An error body as upstreams of every dialect write it, quoting the key `spelled`."""
    message = f"Incorrect API key provided: {spelled}. See https://x.test/keys?key={spelled}"
    # The spelled key is written into the JSON as it is (it is already escaped).
    return (
        b'{"type":"error","error":{"type":"invalid_request_error","message":"'
        + message.encode()
        + b'"}}'
    )


def assert_no_key_in(found: dict[str, bytes]) -> None:
    leaks = [(name, where) for name, key in KEYS.items() for where, data in found.items()
             if leaked(key, data)]  # fmt: skip
    assert leaks == []


def test_the_leak_check_finds_every_spelling() -> None:
    secret = KEYS["openai"]
    for name, spelled in spellings(secret).items():
        assert leaked(secret, f'{{"message":"bad key {spelled}!"}}'), name
        assert leaked(secret, f'"{spelled}"'.replace("\\", "\\\\")), name  # escaped twice
    assert not leaked(secret, "bad key [REDACTED]")


@pytest.mark.parametrize("spelling", SPELLINGS)
def test_the_redactor_finds_a_secret_in_every_escaping_an_encoder_may_use(spelling: str) -> None:
    secret = KEYS["openai"]
    spelled = spellings(secret)[spelling]
    redactor = Redactor([secret])
    text = f'{{"message":"bad key {spelled} \\u00e9 100% sure"}}'
    scrubbed = redactor.scrub(text)
    assert not leaked(secret, scrubbed)
    assert scrubbed == '{"message":"bad key [REDACTED] \\u00e9 100% sure"}'
    assert redactor.scrub_bytes(text.encode()) == scrubbed.encode()
    assert orjson.loads(scrubbed)["message"] == "bad key [REDACTED] é 100% sure"


@pytest.mark.parametrize("spelling", SPELLINGS)
async def test_a_key_the_upstream_echoes_escaped_reaches_no_answer_record_or_log(
    gateway, tmp_path: Path, caplog: pytest.LogCaptureFixture, spelling: str
) -> None:
    caplog.set_level(logging.DEBUG)
    upstream = await CarelessUpstream().start()
    try:
        gw = await gateway(config(upstream, tmp_path))
        answers: dict[str, bytes] = {}
        for endpoint in ENDPOINTS:
            for provider, key in KEYS.items():
                body = error_body(spellings(key)[spelling])
                # 401: the key is cooled down and listed in the 503; 400: the client's own
                # mistake, relayed as it is (same dialect) or translated.
                for status in (401, 400):
                    await asyncio.sleep(0.005)  # the key's last cooldown (1 ms) is over
                    upstream.queue(Whole(status, body))
                    got, answer = await send(gw, endpoint, provider)
                    expected = 503 if status == 401 else 400
                    assert got == expected, (endpoint, provider, answer)
                    assert b"[REDACTED]" in answer, (endpoint, provider, answer)
                    same = "same" if SAME_DIALECT[endpoint] == provider else "translated"
                    answers[f"{endpoint} {provider} {status} {same}"] = answer
        assert_no_key_in(answers)
        found = await everything_written(gw, tmp_path)
        records = [orjson.loads(line) for line in found["records.jsonl"].splitlines()]
        assert len(records) == len(ENDPOINTS) * len(KEYS) * 2
        assert any(record.get("raw") for record in records)  # raw capture was on
        assert_no_key_in(found)
        assert_no_key_in({"log": caplog.text.encode()})
    finally:
        await upstream.stop()


async def test_a_key_a_client_writes_url_encoded_in_a_path_or_model_reaches_no_record(
    gateway, tmp_path: Path
) -> None:
    upstream = await CarelessUpstream().start()
    try:
        gw = await gateway(config(upstream, tmp_path))
        session = gw.http()
        auth = {"Authorization": f"Bearer {TOKEN}"}
        key = KEYS["openai"]
        for spelling in ("literal", "url_dash", "url_every_char"):
            spelled = spellings(key)[spelling]
            async with session.get(f"/v1/nothing?key={spelled}", headers=auth) as response:
                assert response.status == 404
            chat = {"model": spelled, "messages": [{"role": "user", "content": "hi"}]}
            async with session.post("/v1/chat/completions", json=chat, headers=auth) as response:
                assert response.status == 404  # no such model
        found = await everything_written(gw, tmp_path)
        assert len(found["records.jsonl"].splitlines()) == 6
        assert_no_key_in(found)
    finally:
        await upstream.stop()
