"""Redis down when the gateway starts: the real CLI serves chat, reports it, and reconnects.

Never touches the shared Redis: the gateway points at a free port where nothing answers, then
the test starts its own redis-server there and watches the gateway pick it up without restart.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import openai
import pytest
import yaml
from cli_run import terminate
from fakes.openai_upstream import rate_limited
from fakes.ports import free_port
from fakes.redis_server import RedisServer

from apex_ai_proxy.state.config import ResponsesStoreConfig
from apex_ai_proxy.state.open_store import open_store
from apex_ai_proxy.state.responses_store import ResponseStoreUnavailableError, StoredResponse

MESSAGES = [{"role": "user", "content": "hi"}]
STORE_DOWN_LOG = "responses store: Redis at"


def provider(fake) -> dict:
    return {
        "kind": "openai",
        "base_url": fake.base_url,
        "api_keys": [f"sk-{fake.name}"],
        "timeout": 5.0,
        "connect_timeout": 1.0,
    }


def outage_config(limited, ok, redis_url: str, prefix: str) -> dict:
    return {
        "providers": {"limited": provider(limited), "ok": provider(ok)},
        # round-robin starts at `limited`: its 429 cools the key down, which the health sync
        # must publish once Redis answers.
        "models": {
            "m": {
                "strategy": "round-robin",
                "providers": [{"provider": "limited"}, {"provider": "ok"}],
            }
        },
        "retry": {"cooldown_max_s": 300},
        "responses_store": {
            "backend": "redis",
            "redis_url": redis_url,
            "key_prefix": prefix + "responses:",
        },
        "health": {"backend": "redis", "redis_url": redis_url, "key_prefix": prefix + "health:"},
        "records": {"enabled": False},
    }


def cli_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}


async def readyz(base_url: str) -> tuple[int, dict] | None:
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.get(base_url + "/readyz", timeout=aiohttp.ClientTimeout(total=2)) as resp,
        ):
            return resp.status, await resp.json()
    except (aiohttp.ClientError, TimeoutError):
        return None


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        await asyncio.sleep(0.1)


async def test_gateway_starts_serves_chat_and_reconnects_when_redis_is_down_at_start_up(
    tmp_path: Path, fake_upstream
) -> None:
    limited = await fake_upstream("limited")
    limited.default = rate_limited(retry_after=60)
    ok = await fake_upstream("ok")
    redis_server = RedisServer(tmp_path / "redis")  # not started: its port refuses connections
    prefix = f"apex-test:outage:{uuid.uuid4().hex}:"
    path = tmp_path / "apex.yaml"
    path.write_text(yaml.safe_dump(outage_config(limited, ok, redis_server.url, prefix)))
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "serve.log"
    log = open(log_path, "wb")  # noqa: SIM115 - closed in finally
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "apex_ai_proxy",
        "serve",
        "--config",
        str(path),
        "--port",
        str(port),
        stdout=log,
        stderr=subprocess.STDOUT,
        env=cli_env(),
        cwd=tmp_path,
    )
    client = openai.AsyncOpenAI(base_url=base_url + "/v1", api_key="x", max_retries=0, timeout=20)

    async def degraded() -> bool:
        assert proc.returncode is None, log_path.read_text(errors="replace")
        answer = await readyz(base_url)
        return answer is not None and set(answer[1].get("unreachable", ())) == {
            "responses_store",
            "health",
        }

    try:
        await until(degraded, "/readyz reports both Redis users unreachable")
        status, body = await readyz(base_url)
        # 200, not 503: chat works, a load balancer must keep this replica.
        assert (status, body["status"], body["redis"]) == (200, "degraded", "unreachable")

        chat = await client.chat.completions.with_raw_response.create(model="m", messages=MESSAGES)
        assert chat.headers["x-apex-provider"] == "ok"  # limited#0 answered 429: cooling now
        calls = len(ok.requests)
        for _ in range(3):
            try:
                await client.responses.create(model="m", input="keep me")
            except openai.APIStatusError as err:
                assert err.status_code == 503
                assert err.body["code"] == "response_store_unavailable"
                assert "unreachable" in err.body["message"]
            else:
                raise AssertionError("a stored response was accepted while Redis is down")
        assert len(ok.requests) == calls  # refused before any upstream quota was spent
        unstored = await client.responses.create(model="m", input="just answer", store=False)
        assert unstored.output_text

        await redis_server.start()

        async def ready() -> bool:
            answer = await readyz(base_url)
            return answer is not None and answer == (200, {"status": "ready", "models": 1})

        await until(ready, "/readyz says ready again")
        stored = await client.responses.create(model="m", input="keep me")
        assert (await client.responses.retrieve(stored.id)).id == stored.id

        raw = redis_server.client()
        try:

            async def cooldown_shared() -> bool:
                return b"limited#0" in await raw.hgetall(prefix + "health:units")

            await until(cooldown_shared, "the cooldown made during the outage reaches Redis")
        finally:
            await raw.aclose()
        output = log_path.read_text(errors="replace")
        assert output.count(STORE_DOWN_LOG + f" {redis_server.url} is not answering") == 1
        assert "Traceback" not in output
    finally:
        await client.close()
        await terminate(proc)
        log.close()
        await redis_server.stop()


def small_record(response_id: str) -> StoredResponse:
    return StoredResponse(
        id=response_id,
        created_at=1_760_000_000,
        model="m",
        input_items=[],
        instructions=None,
        response={"id": response_id},
        output_items=[],
    )


async def test_redis_store_reconnects_after_an_outage_without_reopening(
    tmp_path: Path, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="apex_ai_proxy")
    redis_server = await RedisServer(tmp_path / "redis").start()
    config = ResponsesStoreConfig(
        backend="redis", redis_url=redis_server.url, key_prefix="apex-test:reconnect:"
    )
    store = await open_store(config)
    try:
        await store.put("resp_1", small_record("resp_1"))
        await redis_server.stop()
        for _ in range(3):
            with pytest.raises(ResponseStoreUnavailableError):
                await store.get("resp_1")
        assert store.reachable is False
        assert caplog.text.count("is not answering") == 1  # once per outage, not per call

        await redis_server.start()

        async def back() -> bool:
            return store.reachable

        await until(back, "the store reconnects", timeout=15)
        await store.put("resp_2", small_record("resp_2"))
        assert await store.get("resp_2") == small_record("resp_2")
        assert "answers again" in caplog.text
    finally:
        await store.close()
        await redis_server.stop()
