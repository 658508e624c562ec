"""Probe of the item-3 fix: a credential configured in a provider's `headers:` (Cloudflare AI
Gateway's `cf-aig-authorization`, Helicone-Auth, Azure APIM's subscription key) is as secret as
`api_keys`, but only `api_keys` and gateway tokens were scrubbed: an upstream quoting it in an
error reached the client and the records."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from fakes.careless_upstream import CarelessUpstream, Whole
from secrets_support import KEYS, config, everything_written, send
from spellings import leaked

from apex_ai_proxy.config import parse_config

HEADER_SECRETS = {
    "cf-aig-authorization": "Bearer cfut-SECRET-0123456789abcdef",
    "Helicone-Auth": "Bearer sk-helicone-SECRET-42424242",
    "Ocp-Apim-Subscription-Key": "apim0123456789abcdef0123456789ab",
}
NOT_SECRET = {"anthropic-beta": "prompt-caching-2024-07-31", "OpenAI-Organization": "org-acme"}


def secret_of(value: str) -> str:
    return value.removeprefix("Bearer ")


def with_headers(cfg: dict) -> dict:
    cfg["providers"]["openai"]["headers"] = {**HEADER_SECRETS, **NOT_SECRET}
    return cfg


def test_credential_headers_of_a_provider_are_secrets_other_headers_are_not(tmp_path) -> None:
    upstream = CarelessUpstream()
    upstream.port = 1
    secrets = parse_config(with_headers(config(upstream, tmp_path)), {}).secrets()
    for value in HEADER_SECRETS.values():
        assert secret_of(value) in secrets
    for value in NOT_SECRET.values():
        assert value not in secrets  # a date or an org id redacted everywhere helps no one


@pytest.mark.parametrize("status", [401, 400])
async def test_a_credential_header_the_upstream_echoes_reaches_no_answer_or_record(
    gateway, tmp_path: Path, status: int
) -> None:
    upstream = await CarelessUpstream().start()
    try:
        gw = await gateway(with_headers(config(upstream, tmp_path)))
        answers = {}
        for name, value in HEADER_SECRETS.items():
            await asyncio.sleep(0.005)  # the key's 1 ms cooldown is over
            body = f'{{"error":{{"message":"bad {name} header: {value}"}}}}'.encode()
            upstream.queue(Whole(status, body))
            got, answers[name] = await send(gw, "chat", "openai")
            assert got == (503 if status == 401 else 400), answers[name]
        found = {**answers, **(await everything_written(gw, tmp_path))}
        leaks = [
            (name, where)
            for name, value in HEADER_SECRETS.items()
            for where, data in found.items()
            if leaked(secret_of(value), data)
        ]
        assert leaks == []
        assert not any(leaked(KEYS["openai"], data) for data in found.values())
    finally:
        await upstream.stop()
