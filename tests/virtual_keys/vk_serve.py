"""Real `apex-ai-proxy serve` processes for the virtual-key tests: started on a free port, ready
when /readyz answers, stopped with SIGTERM (and must exit 0, without a traceback)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from cli_run import terminate
from fakes.ports import free_port

BIN = Path(sys.executable).parent / "apex-ai-proxy"


def write_config(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump({**config, "records": {"enabled": False}}))
    return path


def cli_env() -> dict[str, str]:
    return {
        k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k != "APEX_CONFIG"
    }


class Served:
    def __init__(self, proc: asyncio.subprocess.Process, port: int, log: Path) -> None:
        self.proc, self.log = proc, log
        self.base_url = f"http://127.0.0.1:{port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    async def request(
        self, method: str, path: str, token: str, json: Any = None
    ) -> tuple[int, Any]:
        """(status, JSON body) on a connection of its own: with --workers, SO_REUSEPORT spreads
        new connections over the workers."""
        connector = aiohttp.TCPConnector(force_close=True)
        headers = {"authorization": f"Bearer {token}"}
        async with (
            aiohttp.ClientSession(connector=connector) as http,
            http.request(method, self.base_url + path, json=json, headers=headers) as resp,
        ):
            return resp.status, await resp.json(content_type=None)

    async def chat(self, key: str) -> int:
        body = {"model": "m1", "messages": [{"role": "user", "content": "hi"}]}
        return (await self.request("POST", "/v1/chat/completions", key, body))[0]


@contextlib.asynccontextmanager
async def serve(workdir: Path, config: Path, *extra: str) -> AsyncIterator[Served]:
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_path = workdir / "serve.log"
    log = open(log_path, "wb")  # noqa: SIM115 - closed below
    proc = await asyncio.create_subprocess_exec(
        *(str(BIN), "serve", "--config", str(config), "--port", str(port), *extra),
        stdout=log,
        stderr=subprocess.STDOUT,
        env=cli_env(),
        cwd=workdir,
    )
    served = Served(proc, port, log_path)
    try:
        await _wait_ready(served)
        yield served
    finally:
        await terminate(proc)
        log.close()
    assert proc.returncode == 0, served.output()
    assert "Traceback" not in served.output(), served.output()


async def _wait_ready(served: Served) -> None:
    deadline = time.monotonic() + 30
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            assert served.proc.returncode is None, served.output()
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(served.base_url + "/readyz") as resp:
                    if resp.status == 200:
                        return
            await asyncio.sleep(0.05)
    raise AssertionError("serve did not become ready:\n" + served.output())


async def known_to(served: Served, key: str, ttl: float, timeout: float = 20) -> None:
    """Wait until `served` reads the key; asks GET /v1/models, which spends none of the key's
    limits. Each worker has its own cache and the kernel picks the worker per connection, so
    first a few TTLs (every worker's refresh loop has run since), then a run of acceptances."""
    await asyncio.sleep(4 * ttl)
    deadline = time.monotonic() + timeout
    accepted = 0
    while accepted < 8:
        status, _ = await served.request("GET", "/v1/models", key)
        accepted = accepted + 1 if status == 200 else 0
        assert time.monotonic() < deadline, f"the key was never accepted ({status})"
        if status != 200:
            await asyncio.sleep(0.05)
