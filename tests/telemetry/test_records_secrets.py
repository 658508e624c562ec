"""No secret reaches a sink: with raw capture on, search the bytes of every file the sinks wrote
(the SQLite file and its WAL, the JSONL file) for every credential the requests carried."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest
from fakes.openai_upstream import Fail
from records_gateway_support import TOKEN, provider, records, records_section

from apex_ai_proxy.passthrough import PROVIDER_HEADER

ALPHA_KEY = "sk-alpha-secret-0123456789"
BETA_KEY = "sk-beta-secret-9876543210"
CLIENT_CREDENTIAL = "sk-client-passthrough-5555555"  # the client's own key, passthrough only
WRONG_TOKEN = "wrong-gateway-token-424242"


async def test_no_secret_is_written_by_any_sink_with_raw_capture_on(
    gateway, fake_upstream, tmp_path: Path
) -> None:
    alpha, beta = await fake_upstream("alpha"), await fake_upstream("beta")
    # alpha rejects its key and quotes it back, as some upstreams do
    alpha.queue(Fail(401, f"Incorrect API key provided: {ALPHA_KEY}", "invalid_request_error"))
    gw = await gateway(
        {
            "gateway_tokens": [TOKEN],
            "providers": {
                "alpha": provider(alpha.base_url, ALPHA_KEY),
                "beta": provider(beta.base_url, BETA_KEY),
            },
            "models": {
                "chat-model": {
                    "strategy": "round-robin",
                    "providers": [{"provider": "alpha"}, {"provider": "beta"}],
                }
            },
            "passthrough": {
                "enabled": True,
                "allow": [
                    {
                        "host": "127.0.0.1",
                        "allow_http": True,
                        "allow_private": True,
                        "ports": [alpha.port],
                    }
                ],
            },
            "records": records_section(tmp_path, raw=True),
        }
    )
    # every secret in the headers and in the bodies (the fake echoes the last user message)
    leaky = [{"role": "user", "content": f"keys {TOKEN} {ALPHA_KEY} {BETA_KEY}"}]
    client = gw.openai(TOKEN)
    completion = await client.chat.completions.create(model="chat-model", messages=leaky)
    assert BETA_KEY in completion.choices[0].message.content  # it really went through the body
    stream = await client.chat.completions.create(
        model="chat-model", messages=leaky, stream=True, extra_headers={"x-api-key": ALPHA_KEY}
    )
    async for _ in stream:
        pass
    with pytest.raises(openai.AuthenticationError):
        await gw.openai(WRONG_TOKEN).chat.completions.create(model="chat-model", messages=leaky)
    passthrough = gw.openai(
        CLIENT_CREDENTIAL,
        default_headers={
            PROVIDER_HEADER: f"http://127.0.0.1:{alpha.port}",
            "X-APEX-AI-PROXY-TOKEN": TOKEN,
        },
    )
    await passthrough.chat.completions.create(model="up-model", messages=leaky)
    assert alpha.requests[-1].key == CLIENT_CREDENTIAL  # forwarded upstream, as it must be

    found = await records(gw, tmp_path)
    assert len(found) == 4
    assert any(r.get("raw") for r in found)  # raw capture really was on
    await gw.app.services.recorder.flush()
    files = [tmp_path / name for name in ("records.db", "records.db-wal", "records.jsonl")]
    data = {path.name: path.read_bytes() for path in files if path.exists()}
    assert {"records.db", "records.jsonl"} <= set(data)
    secrets = (TOKEN, ALPHA_KEY, BETA_KEY, CLIENT_CREDENTIAL, WRONG_TOKEN)
    leaks = [(s, name) for s in secrets for name, content in data.items() if s.encode() in content]
    assert leaks == []
