"""`serve --workers 2` as a real subprocess: a 429 with Retry-After seen by one worker keeps
every worker off that key (the cooldown table is shared), so the rate-limited upstream is hit
once, not once per worker.

Each request goes on a new TCP connection, so SO_REUSEPORT spreads them over both workers; the
test finds out which worker accepted each connection (Linux /proc: the socket's inode among the
worker's file descriptors) and insists that both served some.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from cli_run import write
from fakes.openai_upstream import rate_limited
from gateway_config import config, model, openai_provider
from serve_workers import chat_on_new_connection, two_workers

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads /proc to tell the workers apart"
)

REQUESTS = 20


async def test_a_429_seen_by_one_worker_keeps_every_worker_off_that_key(
    tmp_path: Path, fake_upstream
):
    limited = await fake_upstream("limited")
    limited.default = rate_limited(retry_after=60)
    ok = await fake_upstream("ok")
    # round-robin starts at the first target in every process: on its first request each
    # worker tries `limited` first unless it already knows that key is cooling down.
    cfg = config(
        {"limited": openai_provider(limited), "ok": openai_provider(ok)},
        {"m": model("limited", "ok", strategy="round-robin")},
        retry={"cooldown_max_s": 300},  # Retry-After is capped at 12 × this: keep the 60 s
    )
    path = write(tmp_path, cfg)
    async with two_workers(path, tmp_path) as (port, workers):
        served_by = []
        for _ in range(REQUESTS):
            status, headers, body, pid = await chat_on_new_connection(port, workers)
            assert status == 200, body
            assert headers["x-apex-provider"] == "ok"
            assert body["choices"][0]["message"]["content"].startswith("ok ")
            served_by.append(pid)

        assert None not in served_by, f"a connection was served by no known worker: {served_by}"
        assert set(served_by) == set(workers), f"one worker served everything: {served_by}"
        assert len(limited.requests) == 1, (
            f"the rate-limited upstream was hit {len(limited.requests)} times"
        )
        assert len(ok.requests) == REQUESTS
