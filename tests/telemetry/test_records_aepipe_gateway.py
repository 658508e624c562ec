"""The aepipe sink under the whole gateway: a down or hanging aepipe costs requests nothing (its
records are dropped and counted), and the aepipe token never reaches a record, a log or an
error."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from aepipe_fake import aepipe_service_fixture  # noqa: F401 - provides `aepipe_service`
from records_gateway_support import MESSAGES, TOKEN, provider

AEPIPE_TOKEN = "aepipe-admin-SECRET-7f3c9a"
PROJECT = "apex-ai-proxy"


def config(tmp_path: Path, upstream_url: str, aepipe_url: str, **sink: Any) -> dict[str, Any]:
    aepipe = {
        "type": "http",
        "format": "aepipe",
        "base_url": aepipe_url,
        "token": "${AEPIPE_TOKEN}",
        "project": PROJECT,
        "logstore": "requests",
        "raw_logstore": "raw",
        **sink,
    }
    return {
        "gateway_tokens": [TOKEN],
        "providers": {"alpha": provider(upstream_url, "sk-alpha-key-0000")},
        "models": {"chat-model": {"providers": [{"provider": "alpha"}]}},
        "records": {
            "raw": True,
            "flush_interval_s": 0.02,
            "sinks": [aepipe, {"type": "jsonl", "path": str(tmp_path / "records.jsonl")}],
        },
    }


def closed_port() -> int:
    """A loopback port nothing listens on (connections to it are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def wait_until(condition, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


@pytest.mark.parametrize("down", ["refusing", "hanging"])
async def test_a_down_aepipe_never_slows_or_fails_requests(
    down, gateway, fake_upstream, aepipe_service, tmp_path: Path
) -> None:
    upstream = await fake_upstream("alpha")
    if down == "refusing":
        url = f"http://127.0.0.1:{closed_port()}"
    else:  # accepts, then never answers: only its 30 s timeout would end a post
        url = (await aepipe_service(AEPIPE_TOKEN, hang=True)).base_url
    sink = {"timeout_s": 30, "max_retries": 0, "buffer_size": 10}
    gw = await gateway(config(tmp_path, upstream.base_url, url, **sink), {"AEPIPE_TOKEN": "x"})
    client = gw.openai(TOKEN)

    slowest = 0.0
    for _ in range(30):
        started = time.monotonic()
        completion = await client.chat.completions.create(model="chat-model", messages=MESSAGES)
        slowest = max(slowest, time.monotonic() - started)
        assert completion.choices[0].message.content
    assert slowest < 2.0  # far below the sink's 30 s timeout: nothing waited on aepipe

    recorder = gw.app.services.recorder
    aepipe_sink = recorder.sinks[0]
    jsonl = tmp_path / "records.jsonl"
    await wait_until(lambda: jsonl.exists() and len(jsonl.read_bytes().splitlines()) == 30)
    assert recorder.dropped == 0  # the recorder itself took every record
    assert aepipe_sink.written == 0
    if down == "refusing":
        await wait_until(lambda: aepipe_sink.dropped == 30)  # every record counted, none lost
    else:
        # the batch in flight hangs; the sink holds at most 10 records (that one included) and
        # drops the rest, counted, as they arrive
        await wait_until(lambda: aepipe_sink.dropped + aepipe_sink.buffered == 30)
        assert 1 <= aepipe_sink.buffered <= 10 and aepipe_sink.dropped >= 20
    stats = recorder.stats()["sinks"]
    assert stats["http"]["dropped"] == aepipe_sink.dropped and stats["jsonl"]["dropped"] == 0


async def test_the_aepipe_token_never_reaches_records_logs_or_errors(
    gateway, fake_upstream, aepipe_service, tmp_path: Path, caplog
) -> None:
    upstream = await fake_upstream("alpha")
    service = await aepipe_service(AEPIPE_TOKEN)
    gw = await gateway(
        config(tmp_path, upstream.base_url, service.base_url),
        {"AEPIPE_TOKEN": AEPIPE_TOKEN},
    )
    assert AEPIPE_TOKEN in gw.config.secrets()
    leaky = [{"role": "user", "content": f"the log token is {AEPIPE_TOKEN}"}]
    with caplog.at_level(logging.DEBUG):
        client = gw.openai(TOKEN, default_headers={"x-log-token": AEPIPE_TOKEN})
        completion = await client.chat.completions.create(model="chat-model", messages=leaky)
        assert AEPIPE_TOKEN in completion.choices[0].message.content  # it really went through
        with pytest.raises(Exception):  # noqa: B017 - the 401, whatever the SDK calls it
            await gw.openai(AEPIPE_TOKEN).chat.completions.create(
                model="chat-model", messages=leaky
            )
        await gw.app.services.recorder.flush()
        await wait_until(lambda: len(service.points(PROJECT, "requests")) == 2)
        await wait_until(lambda: len(service.logs(PROJECT, "raw")) == 1)  # none for the 401

    assert service.refused == []
    statuses = sorted(point["payload"]["status"] for point in service.points(PROJECT, "requests"))
    assert statuses == [200, 401]
    raw = orjson.dumps(service.logs(PROJECT, "raw")).decode()
    assert raw.count("[REDACTED]") >= 3  # where the token was: body, echo, header
    sent = orjson.dumps(service.posts)
    jsonl = (tmp_path / "records.jsonl").read_bytes()
    assert AEPIPE_TOKEN.encode() not in sent
    assert AEPIPE_TOKEN.encode() not in jsonl
    assert AEPIPE_TOKEN not in caplog.text
