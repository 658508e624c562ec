from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from errors_support import BrokenUpstreams


@pytest.fixture
async def broken() -> AsyncIterator[BrokenUpstreams]:
    upstreams = BrokenUpstreams()
    yield upstreams
    await upstreams.stop()
