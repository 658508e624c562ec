"""A client that closes or half-closes before its answer costs no upstream quota: the request is
marked `disconnected` and the dispatcher stops before the next attempt (issue 10 #8)."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import orjson
import uvloop
import yaml
from fakes.openai_upstream import FakeUpstream, Hang, Reply  # noqa: E402
from gateway_config import MESSAGES, config, model, openai_provider

BODY = orjson.dumps({"model": "m", "messages": MESSAGES})
REQUEST = (
    b"POST /v1/chat/completions HTTP/1.1\r\nhost: a\r\ncontent-type: application/json\r\n"
    b"content-length: %d\r\n\r\n%b" % (len(BODY), BODY)
)


async def test_client_gone_during_an_attempt_gets_no_second_attempt(gateway, fake_upstream):
    up = await fake_upstream("up")
    up.default = Hang(5)  # every attempt times out after 0.6 s
    provider = openai_provider(up, "sk-1", "sk-2", "sk-3", timeout=0.6)
    gw = await gateway(config({"oa": provider}, {"m": model("oa")}))
    port = int(gw.base_url.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(REQUEST)
    await writer.drain()
    await asyncio.sleep(0.2)  # the first attempt is waiting on the upstream
    writer.close()
    await asyncio.sleep(1.2)  # past the first attempt's timeout: a second would have started
    assert len(up.requests) == 1


def test_half_closed_client_costs_no_upstream_call(tmp_path):
    """Under uvloop (what `serve` runs), a request followed at once by a half-close is seen as
    gone before its handler runs: the upstream is never called."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        calls, _ = runner.run(_half_close_then_count(tmp_path))
    assert calls == 0
    records = [orjson.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert [r["error_type"] for r in records if r.get("error_type")] == ["client_disconnected"]


def test_half_closed_client_costs_no_quota_of_a_pooled_key(tmp_path):
    """With limits on the key (the pool's first attempt reserves before it is sent), the request
    of a client already gone gives its reservation back: only the control request counts."""
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        calls, counted = runner.run(_half_close_then_count(tmp_path, {"rpm": 5}))
    assert calls == 0
    assert counted == 1


async def _half_close_then_count(
    tmp_path: Path, limits: dict | None = None
) -> tuple[int, int | None]:
    """(upstream calls of the half-closed request, requests the key pool counted in the minute
    when `limits` are set on the provider)."""
    from apex_ai_proxy.app import create_app
    from apex_ai_proxy.config import load_config_file

    up = await FakeUpstream("up").start()
    up.default = Reply()
    try:
        provider = openai_provider(up) if limits is None else openai_provider(up, limits=limits)
        cfg = config({"oa": provider}, {"m": model("oa")})
        cfg["records"] = {"sinks": [{"type": "jsonl", "path": str(tmp_path / "r.jsonl")}]}
        path = tmp_path / "apex.yaml"
        path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
        app = create_app(load_config_file(path, {}))
        port = await app.start("127.0.0.1", 0)
        try:
            with socket.create_connection(("127.0.0.1", port)) as sock:
                sock.sendall(REQUEST)
                sock.shutdown(socket.SHUT_WR)
                await asyncio.sleep(0.5)
            # the same request without the half-close does reach the upstream
            with socket.create_connection(("127.0.0.1", port)) as sock:
                sock.sendall(REQUEST)
                await asyncio.sleep(0.5)
            assert len(up.requests) >= 1, "the control request should have reached the upstream"
            counted = None
            if limits is not None:
                views = await app.services.pool.snapshot()
                counted = sum(v.minute_requests for v in views.values())
            return len(up.requests) - 1, counted
        finally:
            await app.stop(grace=0.5)
    finally:
        await up.stop()
