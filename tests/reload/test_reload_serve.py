"""Reloading a real `apex-ai-proxy serve`: SIGHUP with a stream in flight, a refused file, the
`reload` command, and `--workers 2` (the launcher passes SIGHUP on to every worker)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import orjson
import pytest
from cli_run import terminate
from fakes.openai_upstream import Reply
from fakes.ports import free_port
from reload_support import CLIENT, SECRETS, check_problems, config, no_secret_in, provider, rewrite

BIN = Path(sys.executable).parent / "apex-ai-proxy"
FIRST, SECOND, THIRD = SECRETS
AUTH = {"authorization": f"Bearer {CLIENT}"}


def cli_env() -> dict[str, str]:
    return {
        k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k != "APEX_CONFIG"
    }


class Served:
    def __init__(self, proc: asyncio.subprocess.Process, port: int, log: Path, pid_file: Path):
        self.proc, self.port, self.log, self.pid_file = proc, port, log, pid_file
        self.base_url = f"http://127.0.0.1:{port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    async def wait_for_log(self, text: str, count: int = 1, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while self.output().count(text) < count:
            assert self.proc.returncode is None, self.output()
            assert time.monotonic() < deadline, f"no {text!r} ×{count} in:\n{self.output()}"
            await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def serve(tmp_path: Path, path: Path, *extra: str) -> AsyncIterator[Served]:
    port = free_port()
    log_path, pid_file = tmp_path / "serve.log", tmp_path / "apex.pid"
    log = open(log_path, "wb")  # noqa: SIM115 - closed below
    proc = await asyncio.create_subprocess_exec(
        *(str(BIN), "serve", "--config", str(path), "--port", str(port)),
        *("--pid-file", str(pid_file), *extra),
        stdout=log,
        stderr=subprocess.STDOUT,
        env=cli_env(),
        cwd=tmp_path,
    )
    served = Served(proc, port, log_path, pid_file)
    try:
        await _wait_ready(served)
        yield served
    finally:
        await terminate(proc)
        log.close()
    assert proc.returncode == 0, served.output()
    assert not pid_file.exists(), "serve left its pid file behind"
    assert "Traceback" not in served.output()
    no_secret_in(served.output())


async def _wait_ready(served: Served) -> None:
    deadline = time.monotonic() + 20
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            assert served.proc.returncode is None, served.output()
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(served.base_url + "/readyz") as resp:
                    if resp.status == 200:
                        return
            await asyncio.sleep(0.05)
    raise AssertionError("serve did not become ready:\n" + served.output())


async def post_chat(base_url: str, model: str) -> tuple[int, dict]:
    """On a new connection each time (with workers, SO_REUSEPORT spreads them)."""
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as http:
        body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
        async with http.post(base_url + "/v1/chat/completions", json=body, headers=AUTH) as resp:
            return resp.status, await resp.json(content_type=None)


async def test_sighup_reload_keeps_streams_in_flight(tmp_path, fake_upstream):
    slow, fresh = await fake_upstream("slow"), await fake_upstream("fresh")
    slow.default = Reply(content="one two three four five six seven eight", token_delay=0.25)
    path = tmp_path / "apex.yaml"
    rewrite(path, config({"slow": provider(slow, FIRST)}, {"m": ["slow"]}))
    async with serve(tmp_path, path) as served:
        async with aiohttp.ClientSession() as http:
            body = {
                "model": "m",
                "stream": True,
                "messages": [{"role": "user", "content": "count"}],
            }
            async with http.post(
                served.base_url + "/v1/chat/completions", json=body, headers=AUTH
            ) as stream:
                assert stream.status == 200
                frames = [await stream.content.readline()]  # the stream has begun
                # The model the stream uses goes away, its provider too: it must still finish.
                rewrite(path, config({"fresh": provider(fresh, SECOND)}, {"m2": ["fresh"]}))
                served.proc.send_signal(signal.SIGHUP)
                await served.wait_for_log("config reloaded")
                status, reply = await post_chat(served.base_url, "m2")
                assert status == 200, reply
                assert reply["choices"][0]["message"]["content"].startswith("fresh ")
                status, reply = await post_chat(served.base_url, "m")
                assert status == 404, reply
                frames += [line async for line in stream.content]
        events = [
            orjson.loads(line[6:])
            for line in b"".join(frames).splitlines()
            if line.startswith(b"data: {")
        ]
        text = "".join(
            e["choices"][0]["delta"].get("content") or "" for e in events if e["choices"]
        )
        assert text == "one two three four five six seven eight"
        assert any(e["choices"] and e["choices"][0].get("finish_reason") for e in events)
        assert b"data: [DONE]" in b"".join(frames)
        assert "models added: m2" in served.output()


async def test_a_bad_config_is_refused_with_checks_messages_and_the_old_one_serves(
    tmp_path, fake_upstream
):
    a = await fake_upstream("a")
    path = tmp_path / "apex.yaml"
    good = config({"a": provider(a, FIRST)}, {"m": ["a"]})
    rewrite(path, good)
    async with serve(tmp_path, path) as served:
        bad = config(
            {"a": provider(a, FIRST, SECOND)}, {"m": ["a", "azur"]}, retry={"max_attempts": 0}
        )
        rewrite(path, bad)
        expected = check_problems(BIN, path, cli_env())
        # The command checks first, exactly as `check` does, and signals nothing.
        command = subprocess.run(
            [str(BIN), "reload", "--config", str(path), "--pid-file", str(served.pid_file)],
            capture_output=True,
            text=True,
            timeout=30,
            env=cli_env(),
        )
        assert command.returncode == 1
        assert command.stderr.splitlines() == expected
        # SIGHUP itself: the gateway logs check's lines and keeps its config.
        served.proc.send_signal(signal.SIGHUP)
        await served.wait_for_log("config reload refused")
        for line in expected:
            assert line in served.output()
        status, reply = await post_chat(served.base_url, "m")
        assert status == 200, reply
        assert a.requests[-1].key == FIRST
        # Fixed, and asked for by the command: applied.
        rewrite(path, config({"a": provider(a, SECOND)}, {"m": ["a"], "n": ["a"]}))
        command = subprocess.run(
            [str(BIN), "reload", "--config", str(path), "--pid-file", str(served.pid_file)],
            capture_output=True,
            text=True,
            timeout=30,
            env=cli_env(),
        )
        assert command.returncode == 0, command.stderr
        await served.wait_for_log("config reloaded")
        status, reply = await post_chat(served.base_url, "n")
        assert status == 200, reply
        assert a.requests[-1].key == SECOND


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SO_REUSEPORT spreading")
async def test_workers_2_reload_every_worker(tmp_path, fake_upstream):
    a, b = await fake_upstream("a"), await fake_upstream("b")
    path = tmp_path / "apex.yaml"
    rewrite(path, config({"a": provider(a, FIRST)}, {"m": ["a"]}))
    async with serve(tmp_path, path, "--workers", "2") as served:
        rewrite(path, config({"a": provider(a, FIRST), "b": provider(b, THIRD)}, {"m2": ["b"]}))
        command = subprocess.run(
            [str(BIN), "reload", "--config", str(path)],  # the default pid file, as serve's
            capture_output=True,
            text=True,
            timeout=30,
            env=cli_env(),
        )
        assert command.returncode != 0  # serve was given --pid-file: the default names none
        os.kill(served.proc.pid, signal.SIGHUP)
        await served.wait_for_log("config reloaded", count=2)  # once per worker
        assert "added keys b#0: cooldowns are per worker until a restart" in served.output()
        for _ in range(12):
            status, reply = await post_chat(served.base_url, "m2")
            assert status == 200, reply
            status, reply = await post_chat(served.base_url, "m")
            assert status == 404, reply
        assert len(b.requests) == 12
