from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from fakes.responses_upstream import FakeResponsesUpstream


@pytest.fixture
async def native() -> AsyncIterator[Callable[..., Awaitable[FakeResponsesUpstream]]]:
    started: list[FakeResponsesUpstream] = []

    async def start(name: str = "native", **kwargs: Any) -> FakeResponsesUpstream:
        fake = await FakeResponsesUpstream(name, **kwargs).start()
        started.append(fake)
        return fake

    yield start
    for fake in started:
        await fake.stop()
