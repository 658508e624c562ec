"""Fixtures of the console tests: a Chromium (browser_support.py says when it is skipped) and
the quota-enforcing fake upstream (tests/fakes/quota_upstream.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from browser_support import CHROMIUM, playwright_api
from fakes.quota_upstream import QuotaUpstream


@pytest.fixture
async def browser():
    if playwright_api is None:
        pytest.skip("playwright is not installed")
    async with playwright_api.async_playwright() as p:
        # --no-sandbox: CI runs as root, where Chromium's sandbox cannot start.
        launched = await p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        await launched.close()


@pytest.fixture
async def quota_upstream() -> AsyncIterator[Callable[..., Any]]:
    started: list[QuotaUpstream] = []

    async def start(**kwargs: Any) -> QuotaUpstream:
        fake = await QuotaUpstream(**kwargs).start()
        started.append(fake)
        return fake

    yield start
    for fake in started:
        await fake.stop()
