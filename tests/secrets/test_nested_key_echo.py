r"""Probe of the item-3 fix: an upstream (a router such as OpenRouter) that wraps the body of the
provider behind it as a JSON string, so a key the inner provider escaped is escaped twice
(`\\\/`, `\\u002d`), and a URL quoting a URL percent-encodes twice (`%252D`). Such a key reached
relayed 4xx bodies and raw records in plaintext-after-two-decodes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from urllib.parse import quote

import orjson
import pytest
from fakes.careless_upstream import CarelessUpstream, Whole
from secrets_support import ENDPOINTS, KEYS, SAME_DIALECT, config, everything_written, send
from spellings import leaked, spellings

from apex_ai_proxy.telemetry import Redactor

INNER_SPELLINGS = ["php_slash", "dash_lower_hex", "every_char_upper", "mixed"]


def nested_body(key: str, spelling: str) -> bytes:
    """A router's error body holding the inner provider's raw body as a JSON string."""
    spelled = spellings(key)[spelling]
    inner = '{"error":{"message":"Incorrect API key provided: ' + spelled + '"}}'
    return orjson.dumps(
        {"error": {"message": "Provider returned error", "metadata": {"raw": inner}}}
    )


def twice_url_encoded_body(key: str) -> bytes:
    link = "https://keys.test/check?key=" + quote(key, safe="")
    return orjson.dumps({"error": {"message": "see https://x.test/?next=" + quote(link, safe="")}})


@pytest.mark.parametrize("spelling", INNER_SPELLINGS)
def test_the_redactor_finds_a_key_escaped_twice_in_a_nested_json_string(spelling: str) -> None:
    key = KEYS["openai"]
    body = nested_body(key, spelling).decode()
    assert leaked(key, body)  # the body does hold it
    scrubbed = Redactor([key]).scrub(body)
    assert not leaked(key, scrubbed), scrubbed
    assert "[REDACTED]" in orjson.loads(scrubbed)["error"]["metadata"]["raw"]


def test_the_redactor_finds_a_key_percent_encoded_twice() -> None:
    key = KEYS["openai"]
    body = twice_url_encoded_body(key).decode()
    assert leaked(key, body)
    assert not leaked(key, Redactor([key]).scrub(body))


@pytest.mark.parametrize("spelling", INNER_SPELLINGS)
async def test_a_key_escaped_twice_by_a_router_reaches_no_answer_or_record(
    gateway, tmp_path: Path, spelling: str
) -> None:
    upstream = await CarelessUpstream().start()
    try:
        gw = await gateway(config(upstream, tmp_path))
        answers: dict[str, bytes] = {}
        for endpoint in ENDPOINTS:
            for provider, key in KEYS.items():
                for status in (401, 400):
                    await asyncio.sleep(0.005)  # the key's 1 ms cooldown is over
                    upstream.queue(Whole(status, nested_body(key, spelling)))
                    got, answer = await send(gw, endpoint, provider)
                    assert got == (503 if status == 401 else 400), (endpoint, provider, answer)
                    same = "same" if SAME_DIALECT[endpoint] == provider else "translated"
                    answers[f"{endpoint} {provider} {status} {same}"] = answer
        leaks = [(k, w) for k in KEYS.values() for w, data in answers.items() if leaked(k, data)]
        assert leaks == []
        found = await everything_written(gw, tmp_path)
        leaks = [(k, w) for k in KEYS.values() for w, data in found.items() if leaked(k, data)]
        assert leaks == []
    finally:
        await upstream.stop()
