"""One record per request, through the whole gateway: successes, failovers, streams and every
early rejection, with the status, error type, models, attempts, timings, usage and cost right."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest
from fakes.openai_upstream import rate_limited
from records_gateway_support import (
    MESSAGES,
    PRICE,
    TOKEN,
    cost,
    provider,
    records,
    records_section,
    sqlite_rows,
)

from apex_ai_proxy.passthrough import PROVIDER_HEADER
from apex_ai_proxy.routing.mapping import MAPPING_HEADER


def routed_config(tmp_path: Path, a, b=None, **top) -> dict:
    providers = {"alpha": provider(a.base_url, "sk-alpha-key-0000", price=PRICE)}
    entries = [{"provider": "alpha", "model": "up-alpha"}]
    if b is not None:
        providers["beta"] = provider(b.base_url, "sk-beta-key-0000", price=PRICE)
        entries.append({"provider": "beta", "model": "up-beta"})
    return {
        "gateway_tokens": [TOKEN],
        "providers": providers,
        "models": {"chat-model": {"strategy": "round-robin", "providers": entries}},
        "retry": {"cooldown_base_s": 0.3, "cooldown_max_s": 1.0},
        "records": records_section(tmp_path),
        **top,
    }


async def test_a_success_gives_one_record_with_models_usage_and_cost(
    gateway, fake_upstream, tmp_path: Path
) -> None:
    fake = await fake_upstream("alpha")
    gw = await gateway(routed_config(tmp_path, fake))
    raw = await gw.openai(TOKEN).chat.completions.with_raw_response.create(
        model="chat-model", messages=MESSAGES
    )
    usage = raw.parse().usage

    (record,) = await records(gw, tmp_path)
    assert record["request_id"] == raw.headers["x-request-id"]
    assert (record["endpoint"], record["mode"], record["status"], record["error_type"]) == (
        "/v1/chat/completions",
        "routed",
        200,
        None,
    )
    assert (record["requested_model"], record["mapped_model"]) == ("chat-model", "chat-model")
    assert (record["provider"], record["upstream_model"]) == ("alpha", "up-alpha")
    assert record["token_name"] == "token-1"
    assert (record["prompt_tokens"], record["completion_tokens"]) == (
        usage.prompt_tokens,
        usage.completion_tokens,
    )
    assert [(a["provider"], a["key_name"], a["status"]) for a in record["attempts"]] == [
        ("alpha", "alpha#0", 200)
    ]
    assert record["duration_ms"] > 0
    # the SQLite sink holds the same single record
    assert sqlite_rows(tmp_path, "SELECT request_id, model, provider, status FROM records") == [
        (record["request_id"], "chat-model", "alpha", 200)
    ]


async def test_a_failover_records_every_attempt_by_key_name(
    gateway, fake_upstream, tmp_path: Path
) -> None:
    alpha, beta = await fake_upstream("alpha"), await fake_upstream("beta")
    alpha.queue(rate_limited(retry_after=30))
    gw = await gateway(routed_config(tmp_path, alpha, beta))
    raw = await gw.openai(TOKEN).chat.completions.with_raw_response.create(
        model="chat-model", messages=MESSAGES
    )
    assert raw.headers["x-apex-provider"] == "beta"

    (record,) = await records(gw, tmp_path)
    assert (record["status"], record["provider"], record["upstream_model"]) == (
        200,
        "beta",
        "up-beta",
    )
    first, second = record["attempts"]
    assert (first["provider"], first["key_name"], first["status"]) == ("alpha", "alpha#0", 429)
    assert first["reason"]  # why it was abandoned
    assert (second["provider"], second["key_name"], second["status"]) == ("beta", "beta#0", 200)
    assert second["reason"] is None
    text = str(record)
    assert "sk-alpha-key-0000" not in text and "sk-beta-key-0000" not in text


async def test_a_stream_records_ttft_duration_to_the_end_and_usage(
    gateway, fake_upstream, tmp_path: Path
) -> None:
    fake = await fake_upstream("alpha")
    gw = await gateway(routed_config(tmp_path, fake))
    stream = await gw.openai(TOKEN).chat.completions.create(
        model="chat-model",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    )
    usage = None
    async for chunk in stream:
        usage = chunk.usage or usage
    assert usage is not None

    (record,) = await records(gw, tmp_path)
    assert record["stream"] is True and record["status"] == 200
    assert record["ttft_ms"] is not None and record["ttft_ms"] > 0
    assert record["duration_ms"] >= record["ttft_ms"]
    assert (record["prompt_tokens"], record["completion_tokens"]) == (
        usage.prompt_tokens,
        usage.completion_tokens,
    )


async def test_a_slow_stream_is_timed_to_its_last_byte(
    gateway, fake_upstream, tmp_path: Path
) -> None:
    from fakes.openai_upstream import Reply

    fake = await fake_upstream("alpha")
    fake.default = Reply(content="one two three four five six", token_delay=0.05)
    gw = await gateway(routed_config(tmp_path, fake))
    stream = await gw.openai(TOKEN).chat.completions.create(
        model="chat-model", messages=MESSAGES, stream=True
    )
    async for _ in stream:
        pass

    (record,) = await records(gw, tmp_path)
    # six tokens 50 ms apart: the end of the stream is well after the first token
    assert record["duration_ms"] - record["ttft_ms"] >= 200


async def test_every_early_rejection_gives_exactly_one_record(
    gateway, fake_upstream, tmp_path: Path
) -> None:
    fake = await fake_upstream("alpha")
    config = routed_config(tmp_path, fake, server={"max_body_bytes": 2048})
    config["passthrough"] = {"enabled": False}
    gw = await gateway(config)
    http = gw.http()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    chat = "/v1/chat/completions"
    answers = []

    async def post(headers, **kwargs) -> None:
        async with http.post(chat, headers=headers, **kwargs) as resp:
            answers.append((resp.status, resp.headers["x-request-id"]))

    await post({"Authorization": "Bearer wrong-token-123456"}, json={"model": "chat-model"})
    await post(auth, json={"model": "no-such-model", "messages": MESSAGES})
    await post({**auth, "content-type": "application/json"}, data=b'{"model": "chat-model",')
    await post(auth, json={"model": "chat-model", "messages": MESSAGES, "pad": "x" * 4096})
    await post({**auth, PROVIDER_HEADER: f"http://127.0.0.1:{fake.port}"}, json={})
    await post(
        {**auth, MAPPING_HEADER: "chat-model#"}, json={"model": "chat-model", "messages": MESSAGES}
    )
    assert [status for status, _ in answers] == [401, 404, 400, 413, 403, 400]
    assert fake.requests == []

    found = await records(gw, tmp_path)
    assert [r["request_id"] for r in found] == [rid for _, rid in answers]
    summary = [
        (r["status"], r["error_type"], r["endpoint"], r["mode"], r["requested_model"])
        for r in found
    ]
    assert summary == [
        (401, "authentication_error", chat, "routed", ""),
        (404, "not_found_error", chat, "routed", "no-such-model"),
        (400, "invalid_request_error", chat, "routed", ""),
        (413, "invalid_request_error", chat, "routed", ""),
        (403, "permission_error", chat, "passthrough", ""),
        (400, "invalid_request_error", chat, "routed", "chat-model"),
    ]
    assert all(r["provider"] == "" and r["attempts"] == [] for r in found)
    assert "chat-model#" in found[-1]["error_message"]  # names the malformed entry
    assert found[0]["token_name"] is None


async def test_an_unknown_model_leaves_mapped_model_empty(
    gateway, fake_upstream, tmp_path: Path
) -> None:
    fake = await fake_upstream("alpha")
    gw = await gateway(routed_config(tmp_path, fake))
    with pytest.raises(openai.NotFoundError):
        await gw.openai(TOKEN).chat.completions.create(model="random-name-1", messages=MESSAGES)
    (record,) = await records(gw, tmp_path)
    assert (record["requested_model"], record["mapped_model"]) == ("random-name-1", "")


async def test_cost_comes_from_the_provider_price(gateway, fake_upstream, tmp_path: Path) -> None:
    fake = await fake_upstream("alpha")
    gw = await gateway(routed_config(tmp_path, fake))
    completion = await gw.openai(TOKEN).chat.completions.create(
        model="chat-model", messages=MESSAGES
    )
    (record,) = await records(gw, tmp_path)
    usage = completion.usage
    assert record["cost_usd"] == pytest.approx(cost(usage.prompt_tokens, usage.completion_tokens))


async def test_price_on_the_model_entry_wins_over_the_provider_price(
    gateway, fake_upstream, tmp_path: Path
) -> None:
    fake = await fake_upstream("alpha")
    config = routed_config(tmp_path, fake)
    entry_price = {"input": 100.0, "output": 1000.0}
    config["models"]["chat-model"]["providers"][0]["price"] = entry_price
    gw = await gateway(config)
    completion = await gw.openai(TOKEN).chat.completions.create(
        model="chat-model", messages=MESSAGES
    )
    (record,) = await records(gw, tmp_path)
    usage = completion.usage
    assert record["cost_usd"] == pytest.approx(
        cost(usage.prompt_tokens, usage.completion_tokens, entry_price)
    )


async def test_requests_outside_the_model_endpoints_are_recorded_too(
    gateway, fake_upstream, tmp_path: Path
) -> None:
    fake = await fake_upstream("alpha")
    gw = await gateway(routed_config(tmp_path, fake))
    http = gw.http()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    statuses = []
    for method, path in (("GET", "/v1/models"), ("GET", "/v1/nowhere"), ("GET", "/v1/messages")):
        async with http.request(method, path, headers=auth) as resp:
            statuses.append((resp.status, resp.headers["x-request-id"]))
    assert [status for status, _ in statuses] == [200, 404, 405]
    found = await records(gw, tmp_path)
    assert [(r["request_id"], r["status"]) for r in found] == [(i, s) for s, i in statuses]
