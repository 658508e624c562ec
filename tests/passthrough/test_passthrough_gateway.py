"""Passthrough through the whole gateway (server, auth, allowlist, mapping, records), driven by
the official openai SDK against a fake OpenAI upstream on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openai
import pytest
from aiohttp import web

from apex_ai_proxy.passthrough import PROVIDER_HEADER
from apex_ai_proxy.routing.mapping import MAPPING_HEADER

TOKEN = "gw-pass-token-123456"
CLIENT_KEY = "sk-client-own-key-777777"
TOKEN_HEADER = "X-APEX-AI-PROXY-TOKEN"
MESSAGES = [{"role": "user", "content": "hello through"}]


def allow(port: int, **entry: Any) -> dict[str, Any]:
    return {
        "host": "127.0.0.1",
        "allow_http": True,
        "allow_private": True,
        "ports": [port],
        **entry,
    }


def config(tmp_path: Path, *entries: dict[str, Any], **top: Any) -> dict[str, Any]:
    passthrough = {"enabled": True, "allow": list(entries), **top.pop("passthrough", {})}
    return {
        "gateway_tokens": [TOKEN],
        "passthrough": passthrough,
        "records": {
            "flush_interval_s": 0.05,
            "sinks": [{"type": "jsonl", "path": str(tmp_path / "records.jsonl")}],
        },
        **top,
    }


def client(gw, target: str, *, token: str | None = TOKEN, **headers: str) -> openai.AsyncOpenAI:
    extra = {PROVIDER_HEADER: target, **headers}
    if token is not None:
        extra[TOKEN_HEADER] = token
    return gw.openai(CLIENT_KEY, default_headers=extra)


async def records(gw, tmp_path: Path) -> list[dict[str, Any]]:
    import orjson

    await gw.app.services.recorder.flush()
    path = tmp_path / "records.jsonl"
    return [orjson.loads(line) for line in path.read_bytes().splitlines()] if path.exists() else []


async def test_a_request_reaches_the_named_upstream_with_the_clients_credential(
    gateway, fake_upstream, tmp_path: Path
) -> None:
    fake = await fake_upstream("upstream")
    gw = await gateway(config(tmp_path, allow(fake.port)))
    sdk = client(gw, f"http://127.0.0.1:{fake.port}", **{"X-APEX-AI-PROXY-EXTRA": "x"})
    raw = await sdk.chat.completions.with_raw_response.create(
        model="their-model", messages=MESSAGES
    )
    completion = raw.parse()

    assert completion.choices[0].message.content == "upstream (their-model) heard: hello through"
    (seen,) = fake.requests
    assert seen.key == CLIENT_KEY  # the client's own credential goes upstream
    assert seen.path == "/v1/chat/completions"
    assert not [name for name in seen.headers if name.startswith("x-apex-ai-proxy-")]
    assert TOKEN not in str(seen.headers)
    (record,) = await records(gw, tmp_path)
    assert (record["mode"], record["status"], record["endpoint"]) == (
        "passthrough",
        200,
        "/v1/chat/completions",
    )
    assert record["requested_model"] == "their-model"
    assert record["token_name"] == "token-1"
    assert raw.headers["x-request-id"] == record["request_id"]  # relayed answers carry it too


async def test_a_stream_is_relayed_chunk_by_chunk(gateway, fake_upstream, tmp_path: Path) -> None:
    fake = await fake_upstream("upstream")
    gw = await gateway(config(tmp_path, allow(fake.port)))
    stream = await client(gw, f"http://127.0.0.1:{fake.port}").chat.completions.create(
        model="their-model", messages=MESSAGES, stream=True
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "upstream (their-model) heard: hello through"
    assert fake.requests[0].stream and fake.requests[0].key == CLIENT_KEY
    (record,) = await records(gw, tmp_path)
    assert (record["mode"], record["status"]) == ("passthrough", 200)


async def test_the_gateway_token_is_required_in_its_own_header(
    gateway, fake_upstream, tmp_path: Path
) -> None:
    fake = await fake_upstream("upstream")
    gw = await gateway(config(tmp_path, allow(fake.port)))
    target = f"http://127.0.0.1:{fake.port}"
    with pytest.raises(openai.AuthenticationError):
        await client(gw, target, token=None).chat.completions.create(model="m", messages=MESSAGES)
    with pytest.raises(openai.AuthenticationError):  # the Authorization is the client's, not ours
        await gw.openai(TOKEN, default_headers={PROVIDER_HEADER: target}).chat.completions.create(
            model="m", messages=MESSAGES
        )
    with pytest.raises(openai.AuthenticationError):
        await client(gw, target, token="not-the-token-0000").chat.completions.create(
            model="m", messages=MESSAGES
        )
    assert fake.requests == []
    assert [r["status"] for r in await records(gw, tmp_path)] == [401, 401, 401]


async def test_open_passthrough_needs_no_gateway_token(
    gateway, fake_upstream, tmp_path: Path
) -> None:
    fake = await fake_upstream("upstream")
    gw = await gateway(config(tmp_path, allow(fake.port), passthrough={"open": True}))
    await client(gw, f"http://127.0.0.1:{fake.port}", token=None).chat.completions.create(
        model="m", messages=MESSAGES
    )
    assert fake.requests[0].key == CLIENT_KEY


async def test_disabled_passthrough_is_refused(gateway, fake_upstream, tmp_path: Path) -> None:
    fake = await fake_upstream("upstream")
    cfg = config(tmp_path, allow(fake.port), passthrough={"enabled": False})
    gw = await gateway(cfg)
    with pytest.raises(openai.PermissionDeniedError):
        await client(gw, f"http://127.0.0.1:{fake.port}").chat.completions.create(
            model="m", messages=MESSAGES
        )
    assert fake.requests == []
    (record,) = await records(gw, tmp_path)
    assert (record["status"], record["mode"], record["error_type"]) == (
        403,
        "passthrough",
        "permission_error",
    )


@pytest.mark.parametrize(
    ("entry", "target"),
    [
        pytest.param({"host": "api.example.com"}, "http://127.0.0.1:{port}", id="not-allowlisted"),
        pytest.param(
            {"host": "localhost", "allow_http": True, "ports": ["{port}"]},
            "http://localhost:{port}",
            id="localhost-without-allow_private",
        ),
        pytest.param(
            {"host": "127.0.0.1", "allow_private": True, "ports": ["{port}"]},
            "http://127.0.0.1:{port}",
            id="http-where-https-is-required",
        ),
        pytest.param(
            {"host": "127.0.0.1", "allow_http": True, "allow_private": True},
            "http://127.0.0.1:{port}",
            id="port-not-listed",
        ),
    ],
)
async def test_refused_targets_never_reach_the_upstream(
    gateway, fake_upstream, tmp_path: Path, entry: dict[str, Any], target: str
) -> None:
    fake = await fake_upstream("upstream")
    entry = {k: [fake.port] if v == ["{port}"] else v for k, v in entry.items()}
    gw = await gateway(config(tmp_path, entry))
    with pytest.raises(openai.PermissionDeniedError) as refused:
        await client(gw, target.format(port=fake.port)).chat.completions.create(
            model="m", messages=MESSAGES
        )
    assert refused.value.status_code == 403
    assert fake.requests == []
    (record,) = await records(gw, tmp_path)
    assert (record["status"], record["mode"]) == (403, "passthrough")


async def test_a_redirect_is_relayed_not_followed(gateway, tmp_path: Path) -> None:
    hits: list[str] = []

    async def redirect(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(status=302, headers={"Location": "/elsewhere"})

    async def elsewhere(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.json_response({"followed": True})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", redirect)
    app.router.add_route("*", "/elsewhere", elsewhere)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        gw = await gateway(config(tmp_path, allow(port)))
        headers = {PROVIDER_HEADER: f"http://127.0.0.1:{port}", TOKEN_HEADER: TOKEN}
        async with gw.http().post(
            "/v1/chat/completions", json={"model": "m"}, headers=headers, allow_redirects=False
        ) as resp:
            assert resp.status == 302
            assert resp.headers["Location"] == "/elsewhere"
        assert hits == ["/v1/chat/completions"]
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(
    ("model", "mapping_header", "config_mapping", "sent"),
    [
        pytest.param("small", "small#big", {}, "big", id="header"),
        pytest.param("small", None, {"small": "big"}, "big", id="config"),
        pytest.param("small#vendor", "small#big", {}, "big#vendor", id="suffix-kept"),
        pytest.param("small", "big#huge", {"small": "big"}, "huge", id="config-then-header"),
    ],
)
async def test_model_mapping_applies_to_passthrough_bodies(
    gateway,
    fake_upstream,
    tmp_path: Path,
    model: str,
    mapping_header: str | None,
    config_mapping: dict[str, str],
    sent: str,
) -> None:
    fake = await fake_upstream("upstream")
    gw = await gateway(config(tmp_path, allow(fake.port), model_mapping=config_mapping))
    headers = {MAPPING_HEADER: mapping_header} if mapping_header else {}
    sdk = client(gw, f"http://127.0.0.1:{fake.port}", **headers)
    await sdk.chat.completions.create(model=model, messages=MESSAGES)
    assert fake.requests[0].model == sent
    (record,) = await records(gw, tmp_path)
    assert (record["requested_model"], record["mapped_model"]) == (model, sent)


async def test_a_malformed_mapping_header_is_refused_in_passthrough(
    gateway, fake_upstream, tmp_path: Path
) -> None:
    fake = await fake_upstream("upstream")
    gw = await gateway(config(tmp_path, allow(fake.port)))
    sdk = client(gw, f"http://127.0.0.1:{fake.port}", **{MAPPING_HEADER: "a#b#c"})
    with pytest.raises(openai.BadRequestError) as bad:
        await sdk.chat.completions.create(model="a", messages=MESSAGES)
    assert "'a#b#c'" in bad.value.message
    assert fake.requests == []
    (record,) = await records(gw, tmp_path)
    assert (record["status"], record["mode"]) == (400, "passthrough")
