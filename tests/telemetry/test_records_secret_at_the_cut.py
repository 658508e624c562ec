"""Probe of the item-2/3 fixes together: records cut client-chosen fields to FIELD_LIMIT
characters *before* scrubbing them, so a secret that straddles the cut lost its tail first and
was no longer recognised: its first part stayed in the record."""

from __future__ import annotations

import sys
from pathlib import Path

import orjson
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "secrets"))

from fakes.careless_upstream import CarelessUpstream  # noqa: E402
from secrets_support import KEYS, TOKEN, config, everything_written  # noqa: E402

from apex_ai_proxy.telemetry.redact import FIELD_LIMIT  # noqa: E402


@pytest.mark.parametrize("secret", [TOKEN, KEYS["openai"]], ids=["gateway_token", "provider_key"])
@pytest.mark.parametrize("where", ["path", "model"])
async def test_a_secret_straddling_the_field_cut_leaves_no_part_in_the_records(
    gateway, tmp_path: Path, secret: str, where: str
) -> None:
    upstream = await CarelessUpstream().start()
    try:
        gw = await gateway(config(upstream, tmp_path))
        session = gw.http()
        auth = {"Authorization": f"Bearer {TOKEN}"}
        head = secret[: len(secret) // 2]
        if where == "path":
            padding = "a" * (FIELD_LIMIT - len("/v1/") - len(head))
            async with session.get(f"/v1/{padding}{secret}", headers=auth) as response:
                assert response.status == 404
        else:
            padding = "m" * (FIELD_LIMIT - len(head))
            chat = {"model": padding + secret, "messages": [{"role": "user", "content": "hi"}]}
            async with session.post("/v1/chat/completions", json=chat, headers=auth) as response:
                assert response.status == 400  # model names are at most 256 characters
        found = await everything_written(gw, tmp_path)
        (record,) = [orjson.loads(line) for line in found["records.jsonl"].splitlines()]
        assert head not in orjson.dumps(record).decode(), record
        assert not any(head.encode() in data for data in found.values())
    finally:
        await upstream.stop()
