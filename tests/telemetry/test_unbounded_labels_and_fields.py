"""Issue 10, item 2: what a client chooses must not grow the gateway's memory. A 404's raw path
became a metric label (100 requests with 1 MiB paths took RSS from 133 to 891 MB, never
released); random `model#provider` names, mapping headers and passthrough requests did the same
through the model and provider labels. Records kept every such string whole."""

from __future__ import annotations

import secrets
from pathlib import Path

import aiohttp
from records_gateway_support import MESSAGES, TOKEN, provider, records, records_section

from apex_ai_proxy.passthrough import PROVIDER_HEADER
from apex_ai_proxy.routing.mapping import MAPPING_HEADER

LONG = 4000  # characters of each random path (under any request-target cap of the server)


def config(tmp_path: Path, fake) -> dict:
    return {
        "gateway_tokens": [TOKEN],
        "providers": {"alpha": provider(fake.base_url, "sk-alpha-key-0000")},
        "models": {"chat-model": {"providers": [{"provider": "alpha", "model": "up-alpha"}]}},
        "passthrough": {
            "enabled": True,
            "allow": [
                {
                    "host": "127.0.0.1",
                    "allow_http": True,
                    "allow_private": True,
                    "ports": [fake.port],
                }
            ],
        },  # fmt: skip
        "records": records_section(tmp_path),
    }


async def hostile_round(session: aiohttp.ClientSession, port: int) -> str:
    """One request of each kind whose strings the client picks; returns the random part."""
    tag = secrets.token_hex(8)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with session.get(f"/v1/{tag}/" + "p" * LONG, headers=auth) as response:
        assert response.status == 404
    # an explicit provider resolves any model name on it
    chat = {"model": f"model-{tag}#alpha", "messages": MESSAGES}
    async with session.post("/v1/chat/completions", json=chat, headers=auth) as response:
        assert response.status == 200
    mapped = {MAPPING_HEADER: f"chat-model#mapped-{tag}", **auth}
    chat = {"model": "chat-model", "messages": MESSAGES}
    async with session.post("/v1/chat/completions", json=chat, headers=mapped) as response:
        assert response.status == 404  # the mapped name is unknown
    passthrough = {
        PROVIDER_HEADER: f"http://127.0.0.1:{port}",
        "X-APEX-AI-PROXY-TOKEN": TOKEN,
        "Authorization": "Bearer sk-client-own",
    }
    body = {"model": f"pass-{tag}", "messages": MESSAGES}
    async with session.post(f"/v1/chat/completions?{tag}", json=body, headers=passthrough):
        pass
    return tag


async def metrics_text(session: aiohttp.ClientSession) -> str:
    async with session.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}) as response:
        assert response.status == 200
        return await response.text()


def series(text: str) -> list[str]:
    """The sample lines of the gateway's own series, without their values."""
    return sorted(line.rpartition(" ")[0] for line in text.splitlines() if line.startswith("apex_"))


async def test_many_distinct_long_paths_and_names_keep_the_metric_series_and_size_constant(
    gateway, fake_upstream, tmp_path: Path
) -> None:
    fake = await fake_upstream("alpha")
    gw = await gateway(config(tmp_path, fake))
    session = gw.http()
    await hostile_round(session, fake.port)  # every series this traffic can touch now exists
    before = await metrics_text(session)
    tags = [await hostile_round(session, fake.port) for _ in range(120)]
    after = await metrics_text(session)

    assert series(after) == series(before)
    assert len(after) - len(before) < 2000  # only counter digits grew
    assert not [tag for tag in tags if tag in after]
    for label in ('endpoint="other"', 'endpoint="passthrough"', 'model="other"',
                  'model="none"', 'provider="passthrough"'):  # fmt: skip
        assert label in after, label


async def test_a_record_keeps_a_long_path_and_model_truncated(
    gateway, fake_upstream, tmp_path: Path
) -> None:
    fake = await fake_upstream("alpha")
    gw = await gateway(config(tmp_path, fake))
    session = gw.http()
    path = "/v1/" + "p" * LONG
    async with session.get(path, headers={"Authorization": f"Bearer {TOKEN}"}) as response:
        assert response.status == 404
    model = "m" * LONG + "#alpha"
    chat = {"model": model, "messages": MESSAGES}
    async with session.post(
        "/v1/chat/completions", json=chat, headers={"Authorization": f"Bearer {TOKEN}"}
    ) as response:
        assert response.status == 400  # model names are at most 256 characters

    not_found, refused = await records(gw, tmp_path)
    assert not_found["endpoint"] == path[:256] + f"[truncated: {len(path)} chars]"
    assert len(not_found["error_message"]) < 2100  # it quotes the path
    for field in ("requested_model", "mapped_model", "upstream_model", "error_message"):
        assert len(refused.get(field) or "") < 2100, field


async def test_a_raw_capture_keeps_a_long_user_agent_truncated(
    gateway, fake_upstream, tmp_path: Path
) -> None:
    fake = await fake_upstream("alpha")
    settings = config(tmp_path, fake)
    settings["records"] = records_section(tmp_path, raw=True)
    gw = await gateway(settings)
    agent = "agent/" + "u" * LONG
    chat = {"model": "chat-model", "messages": MESSAGES}
    headers = {"Authorization": f"Bearer {TOKEN}", "User-Agent": agent}
    async with gw.http().post("/v1/chat/completions", json=chat, headers=headers) as response:
        assert response.status == 200

    (record,) = await records(gw, tmp_path)
    captured = {name.lower(): value for name, value in record["raw"]["request_headers"].items()}
    kept = captured["user-agent"]
    assert kept == agent[:1024] + f"[truncated: {len(agent)} chars]"
