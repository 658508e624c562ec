"""Running the command line as a real subprocess: the installed `apex-ai-proxy`, an environment
without provider keys, a config file written from a dict, waiting for `serve` to be ready.
Shared by the CLI, config, worker and shutdown tests."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import yaml

BIN = Path(sys.executable).parent / "apex-ai-proxy"
MISSING_VAR = "APEX_TEST_SURELY_UNSET_KEY"


def cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k != "APEX_CONFIG"}
    env.pop(MISSING_VAR, None)
    return env


def run_cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_env(),
        cwd=tempfile.gettempdir(),  # default state files must not land in the repository
    )


def write(tmp_path: Path, data: dict, name: str = "apex.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


async def wait_ready(
    base_url: str, proc: asyncio.subprocess.Process, deadline_s: float = 20
) -> None:
    deadline = time.monotonic() + deadline_s
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            assert proc.returncode is None, "serve exited during start-up"
            try:
                async with http.get(base_url + "/readyz") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise AssertionError("serve did not become ready")


async def terminate(proc: asyncio.subprocess.Process, timeout: float = 15) -> None:
    """SIGTERM a `serve` still running (it drains, then exits), SIGKILL after `timeout`."""
    if proc.returncode is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
