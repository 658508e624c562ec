"""Finding and running the real coding CLIs (npm packages) against a gateway on loopback.

A CLI is looked for under `$APEX_CLI_PREFIX` first (an `npm install --prefix DIR …` folder:
`DIR/node_modules/.bin/NAME`, or `DIR/bin/NAME` for a global-style prefix), then on PATH. A test
whose CLI is missing is skipped with the install command in the reason.

Each run gets a clean environment: a throw-away HOME, PATH with node and the shell, the variables
the test passes, and every known switch for telemetry, update checks and error reporting turned
off, so that nothing but the gateway on loopback is contacted.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGES = {"claude": "@anthropic-ai/claude-code", "codex": "@openai/codex"}

QUIET = {
    "DISABLE_TELEMETRY": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "DISABLE_AUTOUPDATER": "1",
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "NO_UPDATE_NOTIFIER": "1",
    "NO_COLOR": "1",
}


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str

    def describe(self) -> str:
        return f"exit {self.returncode}\n--- stdout\n{self.stdout[-3000:]}\n--- stderr\n{self.stderr[-3000:]}"


def find_cli(name: str) -> str | None:
    prefix = os.environ.get("APEX_CLI_PREFIX")
    if prefix:
        for candidate in (Path(prefix) / "node_modules/.bin" / name, Path(prefix) / "bin" / name):
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return str(candidate)
    return shutil.which(name)


def require_cli(name: str) -> str:
    path = find_cli(name)
    if path is None:
        pytest.skip(
            f"{name} is neither under $APEX_CLI_PREFIX nor on PATH "
            f"(npm install --prefix DIR {PACKAGES[name]}; then APEX_CLI_PREFIX=DIR)"
        )
    return path


def base_path() -> str:
    """PATH for the CLI: node (npm launchers are node scripts) and the usual system folders."""
    folders = [os.path.dirname(p) for p in (shutil.which("node"), shutil.which("bash")) if p]
    return os.pathsep.join(dict.fromkeys([*folders, "/usr/local/bin", "/usr/bin", "/bin"]))


async def run_cli(
    argv: list[str], home: Path, cwd: Path, env: dict[str, str], timeout: float = 90.0
) -> Run:
    """Run a CLI headless with a clean environment; kill it (and fail) past `timeout`."""
    home.mkdir(parents=True, exist_ok=True)
    cwd.mkdir(parents=True, exist_ok=True)
    full_env = {"PATH": base_path(), "HOME": str(home), "TERM": "dumb", **QUIET, **env}
    process = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env=full_env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, 9)
        out, err = await process.communicate()
        run = Run(-9, out.decode(errors="replace"), err.decode(errors="replace"))
        pytest.fail(f"{argv[0]} did not finish within {timeout}s\n{run.describe()}")
    return Run(process.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace"))
