"""Fixtures for the HTTP layer's own tests: `echo_server(**kw)` starts an EchoServer."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from http_support import EchoServer  # noqa: E402


@pytest.fixture
async def echo_server() -> AsyncIterator[Callable[..., Awaitable[EchoServer]]]:
    started: list[EchoServer] = []

    async def start(**kwargs: Any) -> EchoServer:
        server = await EchoServer(**kwargs).start()
        started.append(server)
        return server

    yield start
    for server in started:
        await server.stop()
