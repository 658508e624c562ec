"""The command line, run as a real subprocess: `check`, `serve` with a broken config, and a
graceful shutdown on SIGTERM that lets an open stream finish."""

from __future__ import annotations

import asyncio
import signal
import subprocess

import aiohttp
import openai
from cli_run import BIN, MISSING_VAR, cli_env, run_cli, wait_ready, write
from fakes.openai_upstream import Reply
from fakes.ports import free_port
from gateway_config import MESSAGES, config, model, openai_provider

BROKEN = {
    "providers": {
        "oa": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1", "api_keys": ["sk-one"]},
        "azure": {
            "kind": "azure",
            "base_url": "http://127.0.0.1:9",
            "api_version": "2024-06-01",
            "api_key": "${" + MISSING_VAR + "}",
        },
    },
    "models": {"gpt-4o": {"providers": [{"provider": "oa"}, {"provider": "azur"}]}},
}

VALID = {
    "providers": {
        "oa": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1", "api_keys": ["sk-one"]}
    },
    "models": {"gpt-4o": {"providers": [{"provider": "oa"}]}},
}


def test_check_lists_every_problem_with_its_path(tmp_path):
    result = run_cli("check", "--config", str(write(tmp_path, BROKEN)))
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "models.gpt-4o.providers[1].provider: unknown provider 'azur'" in output
    assert MISSING_VAR in output
    assert "providers.azure.api_key" in output
    assert "Traceback" not in output


def test_check_lists_schema_and_reference_problems_together(tmp_path):
    broken = {**BROKEN, "retry": {"max_attempts": 0}}
    result = run_cli("check", "--config", str(write(tmp_path, broken)))
    output = result.stdout + result.stderr
    assert result.returncode == 1
    assert "retry.max_attempts" in output
    assert "models.gpt-4o.providers[1].provider: unknown provider 'azur'" in output


def test_check_accepts_a_valid_config(tmp_path):
    result = run_cli("check", "--config", str(write(tmp_path, VALID)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_check_reports_unreadable_and_invalid_yaml(tmp_path):
    missing = run_cli("check", "--config", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 1
    assert "nope.yaml" in missing.stdout + missing.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("providers: [unclosed\n", encoding="utf-8")
    invalid = run_cli("check", "--config", str(bad))
    assert invalid.returncode == 1
    assert "Traceback" not in invalid.stdout + invalid.stderr


def test_serve_with_broken_config_exits_listing_problems(tmp_path):
    result = run_cli("serve", "--config", str(write(tmp_path, BROKEN)), "--port", str(free_port()))
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "models.gpt-4o.providers[1].provider: unknown provider 'azur'" in output
    assert MISSING_VAR in output
    assert "Traceback" not in output


async def connection_refused(base_url: str) -> bool:
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as http:
        try:
            async with http.get(
                base_url + "/healthz", timeout=aiohttp.ClientTimeout(total=1)
            ) as resp:
                await resp.read()
        except aiohttp.ClientConnectorError:
            return True
        except (aiohttp.ClientError, TimeoutError):
            return False
    return False


async def test_sigterm_lets_an_open_stream_finish_then_exits_zero(tmp_path, fake_upstream):
    up = await fake_upstream("up")
    words = " ".join(f"w{i}" for i in range(12))
    up.default = Reply(content=words, token_delay=0.15)
    cfg = config(
        {"oa": openai_provider(up, timeout=20)}, {"m": model("oa")}, server={"shutdown_grace_s": 15}
    )
    path = write(tmp_path, cfg)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    log = open(tmp_path / "serve.log", "wb")  # noqa: SIM115 - closed in finally
    proc = await asyncio.create_subprocess_exec(
        str(BIN),
        "serve",
        "--config",
        str(path),
        "--port",
        str(port),
        stdout=log,
        stderr=subprocess.STDOUT,
        env=cli_env(),
        cwd=tmp_path,  # default state files (records, stored responses) land here
    )
    client = openai.AsyncOpenAI(base_url=base_url + "/v1", api_key="x", max_retries=0, timeout=20)
    try:
        await wait_ready(base_url, proc)
        stream = await client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
        chunks = aiter(stream)
        text = ""
        while not text:
            chunk = await anext(chunks)
            text += chunk.choices[0].delta.content or ""
        proc.send_signal(signal.SIGTERM)
        refused = False
        for _ in range(20):
            await asyncio.sleep(0.05)
            if await connection_refused(base_url):
                refused = True
                break
        assert refused, "new connections were still accepted after SIGTERM"
        assert up.in_flight == 1, "the stream was already over: the test proves nothing"
        async for chunk in chunks:
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
        assert text == words
        code = await asyncio.wait_for(proc.wait(), 15)
        output = (tmp_path / "serve.log").read_text(errors="replace")
        assert code == 0, output
        assert "Traceback" not in output
    finally:
        await client.close()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        log.close()
