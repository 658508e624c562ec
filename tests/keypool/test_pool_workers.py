"""`serve --workers 2` with local state as a real subprocess: the key pool's counts live in
one table in shared memory (keypool/shared_ledger.py), so a configured rpm holds for the
gateway, not once per worker."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from cli_run import write
from gateway_config import config, model, openai_provider
from serve_workers import chat_on_new_connection, two_workers

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads /proc to tell the workers apart"
)

RPM = 4
REQUESTS = 12


async def test_two_workers_with_local_state_enforce_a_configured_rpm_once(
    tmp_path: Path, fake_upstream
):
    upstream = await fake_upstream("quota")
    provider = openai_provider(upstream)
    provider["limits"] = {"rpm": RPM}
    path = write(tmp_path, config({"quota": provider}, {"m": model("quota")}))
    async with two_workers(path, tmp_path) as (port, workers):
        # New connections until both workers have answered (SO_REUSEPORT spreads them by a
        # hash: a short run may land on one), at least REQUESTS of them.
        answers: list = []
        while len(answers) < REQUESTS or (
            {pid for *_, pid in answers} < set(workers) and len(answers) < 4 * REQUESTS
        ):
            answers.append(await chat_on_new_connection(port, workers))
        statuses = [status for status, *_ in answers]
        assert statuses.count(200) == RPM, statuses  # not RPM per worker
        assert statuses.count(429) == len(answers) - RPM, statuses
        assert len(upstream.requests) == RPM  # the spent pool called no upstream
        assert {pid for *_, pid in answers} >= set(workers), "one worker answered everything"
        refusal = next(headers for status, headers, _, _ in answers if status == 429)
        assert 1 <= int(refusal["retry-after"]) <= 66
