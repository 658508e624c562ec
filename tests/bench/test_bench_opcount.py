"""bench.opcount counts what a request runs: the key pool's functions show up in a pooled
gateway's counts and not in the gateway without limits, and the diff names them per request.
Skipped where nginx is missing (`make bench` installs it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # `bench` is a folder of the repository, not an installed package

from bench.opcount import diff, read_counts  # noqa: E402
from bench.tools import find_tool  # noqa: E402

REQUESTS = 40


def count(mode: str) -> Path:
    if find_tool("nginx") is None:
        pytest.skip("nginx is not installed (make bench installs it)")
    cmd = [sys.executable, "-m", "bench.opcount", mode, str(REQUESTS)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return Path(done.stdout.strip().rsplit(" -> ", 1)[1])


def test_opcount_shows_the_key_pool_only_where_limits_are_configured():
    off, local = count("off"), count("local")
    plain, pooled = read_counts(off), read_counts(local)
    assert any(name.startswith("Dispatcher.run ") for name in plain)
    assert not any(name.startswith("LocalLedger.reserve_one ") for name in plain)
    reserve = next(n for name, n in pooled.items() if name.startswith("LocalLedger.reserve_one "))
    assert reserve >= 10 * REQUESTS  # every request reserved, at least a few bytecodes each
    report = diff(off, local, REQUESTS)
    assert report.splitlines()[0].startswith("total ")
    assert "LocalLedger.reserve_one" in report
